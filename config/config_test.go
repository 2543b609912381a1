package config

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy/upstream"
)

func TestParseFull(t *testing.T) {
	dir := fixture(t)
	data := lines(
		`[imap]`,
		`listen = "0.0.0.0:1143"`,
		`listen_tls = "[::1]:1993"`,
		`allow_cleartext = true`,
		`[imap.upstream]`,
		`address = "mail.internal:993"`,
		`tls = "tls"`,
		`ca_file = "ca.pem"`,
		`server_name = "localhost"`,
		`login = "login-master"`,
		`master_user = "proxy"`,
		`master_secret_file = "master-secret"`,
		`master_separator = "%"`,
		`send_id = true`,
		`dial_timeout = "3s"`,
		`login_timeout = "1m30s"`,
		`[tls]`,
		`cert_file = "cert.pem"`,
		`key_file = "key.pem"`,
		`[store]`,
		`path = "data/pg.db"`,
		`[authn]`,
		`argon_memory_kib = 64`,
		`argon_time = 1`,
		`argon_threads = 4`,
		`mfa_message = "Use an app password from {portal_url} please"`,
		`[portal]`,
		`url = "https://portal.example.org/app"`,
		`[limits]`,
		`preauth_timeout = "20s"`,
		`idle_timeout = "45m"`,
		`max_line = 1024`,
		`max_literal = 2048`,
		`max_failed_logins = 5`,
		`shutdown_grace = "5s"`,
		`[control]`,
		`socket = "/run/pg.sock"`,
		`[log]`,
		`level = "debug"`,
		`format = "json"`,
	)
	c, err := Parse([]byte(data), dir, nil)
	if err != nil {
		t.Fatal(err)
	}

	m := c.IMAP
	if m.Listen != "0.0.0.0:1143" || m.ListenTLS != "[::1]:1993" || !m.AllowCleartext {
		t.Errorf("imap = %+v", m)
	}
	u := m.Upstream
	want := Upstream{
		Address: "mail.internal:993", TLS: upstream.TLSImplicit, CAFile: filepath.Join(dir, "ca.pem"),
		ServerName: "localhost", Login: upstream.ModeLoginMaster, MasterUser: "proxy",
		MasterSecret: "from-file", MasterSecretFile: filepath.Join(dir, "master-secret"),
		MasterSeparator: "%", SendID: true,
		DialTimeout: Duration{3 * time.Second}, LoginTimeout: Duration{90 * time.Second},
		MasterSecretFrom: "file " + filepath.Join(dir, "master-secret"),
		PoolMaxAge:       Duration{upstream.DefaultPoolMaxAge},
	}
	got := u
	got.TLSConfig, got.Pool = nil, nil
	if got != want {
		t.Errorf("upstream =\n%+v\nwant\n%+v", got, want)
	}
	if u.Pool == nil || *u.Pool != upstream.DefaultPool {
		t.Errorf("upstream pool = %v, want the default %d", u.Pool, upstream.DefaultPool)
	}
	if u.TLSConfig == nil || u.TLSConfig.ServerName != "localhost" || u.TLSConfig.RootCAs == nil ||
		u.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("upstream TLSConfig = %+v", u.TLSConfig)
	}

	if c.TLS.Config == nil || c.TLS.Config.GetCertificate == nil || c.TLS.Config.MinVersion != tls.VersionTLS12 {
		t.Fatalf("tls.Config = %+v", c.TLS.Config)
	}
	cert, err := c.TLS.Config.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := cert.Leaf; leaf == nil || leaf.Subject.CommonName != "localhost" {
		t.Errorf("certificate leaf = %v", leaf)
	}
	if c.TLS.CertFile != filepath.Join(dir, "cert.pem") || c.TLS.KeyFile != filepath.Join(dir, "key.pem") {
		t.Errorf("tls paths = %q, %q", c.TLS.CertFile, c.TLS.KeyFile)
	}
	if c.Store.Path != filepath.Join(dir, "data", "pg.db") {
		t.Errorf("store.path = %q", c.Store.Path)
	}
	if c.Control.Socket != "/run/pg.sock" {
		t.Errorf("control.socket = %q", c.Control.Socket)
	}
	if a := c.Authn; a.ArgonMemoryKiB != 64 || a.ArgonTime != 1 || a.ArgonThreads != 4 {
		t.Errorf("authn = %+v", a)
	}
	if got, want := c.MFAText(), "Use an app password from https://portal.example.org/app please"; got != want {
		t.Errorf("MFAText = %q, want %q", got, want)
	}
	wantLimits := Limits{
		PreauthTimeout: Duration{20 * time.Second}, IdleTimeout: Duration{45 * time.Minute},
		MaxLine: 1024, MaxLiteral: 2048, MaxFailedLogins: 5, ShutdownGrace: Duration{5 * time.Second},
	}
	if !reflect.DeepEqual(c.Limits, wantLimits) {
		t.Errorf("limits = %+v, want %+v", c.Limits, wantLimits)
	}
	if c.Log != (Log{Level: "debug", Format: "json"}) {
		t.Errorf("log = %+v", c.Log)
	}
}

func TestParseDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte(base), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := c.IMAP.Upstream
	if u.TLS != upstream.TLSNone || u.TLSConfig != nil || u.Login != upstream.ModeMaster || u.MasterSeparator != "*" ||
		u.SendID || u.DialTimeout.Duration != 10*time.Second || u.LoginTimeout.Duration != 30*time.Second ||
		u.ServerName != "" || u.CAFile != "" {
		t.Errorf("upstream defaults = %+v", u)
	}
	if u.MasterSecret != "s3cret" || u.MasterSecretFrom != "imap.upstream.master_secret" {
		t.Errorf("secret from %q", u.MasterSecretFrom)
	}
	if c.TLS.Config != nil {
		t.Error("tls.Config set without a certificate")
	}
	if c.Store.Path != filepath.Join(dir, "passgate.db") {
		t.Errorf("store.path = %q", c.Store.Path)
	}
	if c.Control.Socket != filepath.Join(dir, "passgate.sock") {
		t.Errorf("control.socket = %q", c.Control.Socket)
	}
	if a := c.Authn; a.ArgonMemoryKiB != 19456 || a.ArgonTime != 2 || a.ArgonThreads != 1 {
		t.Errorf("authn = %+v", a)
	}
	if got, want := c.MFAText(), "Application password required: create one in the app-passwords portal"; got != want {
		t.Errorf("MFAText = %q, want %q", got, want)
	}
	// The front-ends' limits stay zero: proxy applies their defaults.
	wantLimits := Limits{ShutdownGrace: Duration{30 * time.Second}}
	if !reflect.DeepEqual(c.Limits, wantLimits) {
		t.Errorf("limits = %+v, want %+v", c.Limits, wantLimits)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("log = %+v", c.Log)
	}
}

func TestParseDerivedDefaults(t *testing.T) {
	tests := []struct {
		name   string
		extra  string
		dir    string
		check  func(*Config) string
		expect string
	}{
		{"socket next to store", lines(`[store]`, `path = "/var/lib/pg/x.db"`), "/etc/pg",
			func(c *Config) string { return c.Control.Socket }, "/var/lib/pg/passgate.sock"},
		{"relative store", lines(`[store]`, `path = "db/x.db"`), "/etc/pg",
			func(c *Config) string { return c.Store.Path }, "/etc/pg/db/x.db"},
		{"no dir keeps relative paths", "", "",
			func(c *Config) string { return c.Store.Path }, "passgate.db"},
		{"mfa message with portal url", lines(`[portal]`, `url = "http://localhost:8080/"`), "/x",
			func(c *Config) string { return c.MFAText() }, "Application password required: create one at http://localhost:8080/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tt.extra), tt.dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(c); got != tt.expect {
				t.Errorf("got %q, want %q", got, tt.expect)
			}
		})
	}
}

func TestUpstreamServerNameDefault(t *testing.T) {
	dir := fixture(t)
	data := strings.Replace(base, `address = "127.0.0.1:143"`,
		lines(`address = "127.0.0.1:143"`, `tls = "starttls"`), 1)
	c, err := Parse([]byte(data), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := c.IMAP.Upstream
	if u.ServerName != "127.0.0.1" || u.TLSConfig == nil || u.TLSConfig.ServerName != "127.0.0.1" ||
		u.TLSConfig.RootCAs != nil {
		t.Errorf("server name %q, TLSConfig %+v", u.ServerName, u.TLSConfig)
	}
}

func TestLoad(t *testing.T) {
	dir := fixture(t)
	path := filepath.Join(dir, "passgate.toml")
	writeFile(t, path, base+lines(`[tls]`, `cert_file = "cert.pem"`, `key_file = "key.pem"`))
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != filepath.Join(dir, "cert.pem") || c.TLS.Config == nil {
		t.Errorf("tls = %+v", c.TLS)
	}
	if c.Store.Path != filepath.Join(dir, "passgate.db") {
		t.Errorf("store.path = %q", c.Store.Path)
	}

	writeFile(t, path, base+lines(`[log]`, `level = "loud"`))
	_, err = Load(path)
	if want := path + `:9: log.level: "loud" is not one of debug, info, warn, error`; err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v", err)
	}
}

func TestUpstreamPoolDefault(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        int
	}{
		{"default", "", upstream.DefaultPool},
		{"off", "pool = 0", 0},
		{"set", "pool = 9", 9},
		{"none with send_proxy", `send_proxy = "v1"`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+lines(tc.extra)), fixture(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.IMAP.Upstream.Config().Pool; got != tc.want {
				t.Errorf("pool = %d, want %d", got, tc.want)
			}
		})
	}
}
