package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// withBase returns base with one line replaced (new may be "").
func withBase(old, new string) string {
	if !strings.Contains(base, old) {
		panic("base has no " + old)
	}
	return strings.Replace(base, old, new, 1)
}

func TestParseErrors(t *testing.T) {
	dir := fixture(t)
	tests := []struct {
		name string
		data string
		key  string
		line int    // line expected in the error; 0 when the key is nowhere
		msg  string // part of Error()
	}{
		// Syntax and types.
		{"syntax", base + lines(`[log]`, `level = "info`), "log.level", 9, "newlines"},
		{"type mismatch", withBase(`listen = "127.0.0.1:0"`, `listen = 143`), "imap.listen", 2, "incompatible types"},
		{"uint8 range", base + lines(`[authn]`, `argon_threads = 300`), "authn.argon_threads", 9, "out of range"},

		// Unknown keys.
		{"unknown table", base + lines(`[imapp]`, `listen = ":143"`), "imapp", 8, "unknown key"},
		{"unknown upstream key", base + lines(`adress = "x:1"`), "imap.upstream.adress", 8, "unknown key"},
		{"internal field", base + lines(`TLSConfig = 1`), "imap.upstream.TLSConfig", 8, "unknown key"},
		{"internal field 2", base + lines(`MasterSecretFrom = "x"`), "imap.upstream.MasterSecretFrom", 8, "unknown key"},
		{"unknown dotted key", base + lines(`[log]`, `file.path = "/x"`), "log.file.path", 9, "unknown key"},

		// Values.
		{"bad duration", base + lines(`[limits]`, `idle_timeout = "5x"`), "limits.idle_timeout", 9, `"5x" is not a duration`},
		{"duration without unit", base + lines(`dial_timeout = 30`), "imap.upstream.dial_timeout", 8, `"30" has no unit`},
		{"negative duration", base + lines(`login_timeout = "-1s"`), "imap.upstream.login_timeout", 8, "negative"},
		{"bad tls mode", base + lines(`tls = "tsl"`), "imap.upstream.tls", 8,
			`line 8: imap.upstream.tls: "tsl" is not one of none, starttls, tls`},
		{"bad login mode", base + lines(`login = "admin"`), "imap.upstream.login", 8,
			`"admin" is not one of master, login-master, passthrough`},
		{"negative pool", base + lines(`pool = -1`), "imap.upstream.pool", 8, "-1 is negative"},
		{"pool with send_proxy", base + lines(`send_proxy = "v2"`, `pool = 2`), "imap.upstream.pool", 9, "cannot be used with send_proxy"},
		{"tiny pool_max_age", base + lines(`pool_max_age = "10ms"`), "imap.upstream.pool_max_age", 8, "below the minimum of 1s"},
		{"negative max_line", base + lines(`[limits]`, `max_line = -1`), "limits.max_line", 9, "-1 is negative"},
		{"negative max_failed_logins", base + lines(`[limits]`, `max_failed_logins = -2`), "limits.max_failed_logins", 9, "negative"},
		{"negative shutdown_grace", base + lines(`[limits]`, `shutdown_grace = "-5s"`), "limits.shutdown_grace", 9, "negative"},
		{"tiny idle_timeout", base + lines(`[limits]`, `idle_timeout = "500ms"`), "limits.idle_timeout", 9, "below the minimum of 1s"},
		{"tiny max_literal", base + lines(`[limits]`, ``, `max_literal = 100`), "limits.max_literal", 10, "below the minimum of 512"},
		{"argon memory", base + lines(`[authn]`, `argon_memory_kib = 16`, `argon_threads = 4`), "authn.argon_memory_kib", 9, "8 × argon_threads"},
		{"relative portal url", base + lines(`[portal]`, `url = "/app-passwords"`), "portal.url", 9, "absolute http or https"},
		{"ftp portal url", base + lines(`[portal]`, `url = "ftp://x/"`), "portal.url", 9, "absolute http or https"},
		{"portal url without host", base + lines(`[portal]`, `url = "https://"`), "portal.url", 9, "absolute http or https"},
		{"portal url with newline", base + lines(`[portal]`, `url = "https://a/\n"`), "portal.url", 9, "printable ASCII"},
		{"placeholder without url", base + lines(`[authn]`, `mfa_message = "go to {portal_url}"`), "authn.mfa_message", 9, "portal.url is not set"},
		{"mfa message line break", base + lines(`[authn]`, `mfa_message = "a\r\n* BYE"`), "authn.mfa_message", 9, "printable ASCII"},
		{"mfa message too long", base + lines(`[authn]`, `mfa_message = "`+strings.Repeat("x", 401)+`"`), "authn.mfa_message", 9, "more than 400"},
		{"log level", base + lines(`[log]`, `level = "verbose"`), "log.level", 9, `"verbose" is not one of debug, info, warn, error`},
		{"log format", base + lines(`[log]`, `format = "xml"`), "log.format", 9, `"xml" is not one of text, json`},

		// Listeners.
		{"empty file", "", "imap.listen", 0, "no listener"},
		{"no listener", withBase(`listen = "127.0.0.1:0"`, ``), "imap.listen", 1, "no listener"},
		{"listen without port", withBase(`listen = "127.0.0.1:0"`, `listen = "0.0.0.0"`), "imap.listen", 2, "missing port"},
		{"listen_tls not host:port", withBase(`listen = "127.0.0.1:0"`, `listen_tls = "a:b:c"`), "imap.listen_tls", 2, "not host:port"},
		{"listen_tls without cert", withBase(`listen = "127.0.0.1:0"`, `listen_tls = "127.0.0.1:0"`), "imap.listen_tls", 2, "needs tls.cert_file"},
		{"cleartext off without cert", withBase(`allow_cleartext = true`, `allow_cleartext = false`), "imap.allow_cleartext", 3, "allow_cleartext = true"},
		{"cleartext unset without cert", withBase(`allow_cleartext = true`, ``), "imap.allow_cleartext", 1, "cannot offer STARTTLS"},

		// Files.
		{"missing cert", base + lines(`[tls]`, `cert_file = "nope.pem"`, `key_file = "key.pem"`), "tls.cert_file", 9,
			filepath.Join(dir, "nope.pem") + ": no such file"},
		{"missing key", base + lines(`[tls]`, `cert_file = "cert.pem"`, `key_file = "nope.pem"`), "tls.key_file", 10,
			filepath.Join(dir, "nope.pem")},
		{"key without cert", base + lines(`[tls]`, `key_file = "key.pem"`), "tls.cert_file", 8, "required with tls.key_file"},
		{"cert without key", base + lines(`[tls]`, `cert_file = "cert.pem"`), "tls.key_file", 8, "required with tls.cert_file"},
		{"mismatched pair", base + lines(`[tls]`, `cert_file = "cert.pem"`, `key_file = "other/key.pem"`), "tls.cert_file", 9,
			"does not load: tls: private key does not match public key"},
		{"cert not PEM", base + lines(`[tls]`, `cert_file = "not-pem.txt"`, `key_file = "key.pem"`), "tls.cert_file", 9, "does not load"},
		{"cert is a directory", base + lines(`[tls]`, `cert_file = "other"`, `key_file = "key.pem"`), "tls.cert_file", 9, "not a regular file"},
		{"missing ca", base + lines(`tls = "tls"`, `ca_file = "nope-ca.pem"`), "imap.upstream.ca_file", 9,
			filepath.Join(dir, "nope-ca.pem") + ": no such file"},
		{"ca not PEM", base + lines(`tls = "starttls"`, `ca_file = "not-pem.txt"`), "imap.upstream.ca_file", 9, "holds no PEM certificate"},
		{"ca without tls", base + lines(`ca_file = "ca.pem"`), "imap.upstream.ca_file", 8, "imap.upstream.tls is none"},
		{"server name without tls", base + lines(`server_name = "x"`), "imap.upstream.server_name", 8, "tls is none"},
		{"missing secret file", withBase(`master_secret = "s3cret"`, `master_secret_file = "nope"`), "imap.upstream.master_secret_file", 7,
			filepath.Join(dir, "nope") + ": no such file"},
		{"empty secret file", withBase(`master_secret = "s3cret"`, `master_secret_file = "empty-secret"`), "imap.upstream.master_secret_file", 7, "is empty"},

		// Upstream.
		{"no upstream address", withBase(`address = "127.0.0.1:143"`, ``), "imap.upstream.address", 4, "required"},
		{"upstream address without port", withBase(`address = "127.0.0.1:143"`, `address = "127.0.0.1"`), "imap.upstream.address", 5, "missing port"},
		{"upstream address without host", withBase(`address = "127.0.0.1:143"`, `address = ":143"`), "imap.upstream.address", 5, "needs both a host and a port"},
		{"no master user", withBase(`master_user = "proxy"`, ``), "imap.upstream.master_user", 4, `required with login = "master"`},
		{"no secret", withBase(`master_secret = "s3cret"`, ``), "imap.upstream.master_secret", 4,
			"set master_secret, master_secret_file or PASSGATE_IMAP_UPSTREAM_MASTER_SECRET or PASSGATE_UPSTREAM_MASTER_SECRET"},
		{"no secret login-master", withBase(`master_secret = "s3cret"`, `login = "login-master"`), "imap.upstream.master_secret", 4,
			`required with login = "login-master"`},
		{"both secrets", base + lines(`master_secret_file = "master-secret"`), "imap.upstream.master_secret_file", 8, "only one"},
		{"secret with line break", withBase(`master_secret = "s3cret"`, `master_secret = "a\r\nb"`), "imap.upstream.master_secret", 7,
			"contains a NUL or a line break"},
		{"separator with space", base + lines(`master_separator = "a b"`), "imap.upstream.master_separator", 8, "one printable ASCII character"},
		{"separator of two characters", base + lines(`master_separator = "%%"`), "imap.upstream.master_separator", 8,
			"one printable ASCII character"},
		{"separator a letter", base + lines(`master_separator = "x"`), "imap.upstream.master_separator", 8, "ordinary user names"},
		{"separator @", base + lines(`master_separator = "@"`), "imap.upstream.master_separator", 8, "ordinary user names"},
		{"separator a dot", base + lines(`master_separator = "."`), "imap.upstream.master_separator", 8, "ordinary user names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), dir, nil)
			if c != nil {
				t.Error("config returned with an error")
			}
			e := errorFor(t, err, tt.key)
			if e.Line != tt.line {
				t.Errorf("line %d, want %d: %v", e.Line, tt.line, e)
			}
			text := e.Error()
			if !strings.Contains(text, tt.msg) {
				t.Errorf("error %q does not contain %q", text, tt.msg)
			}
			prefix := tt.key + ": "
			if tt.line > 0 {
				prefix = fmt.Sprintf("line %d: %s: ", tt.line, tt.key)
			}
			if !strings.HasPrefix(text, prefix) {
				t.Errorf("error %q does not start with %q", text, prefix)
			}
		})
	}
}

func TestParseErrorsAll(t *testing.T) {
	t.Run("every problem is reported", func(t *testing.T) {
		data := base + lines(`[limits]`, `max_line = -1`, `[log]`, `level = "loud"`, `format = "xml"`)
		_, err := Parse([]byte(data), t.TempDir(), nil)
		for _, key := range []string{"limits.max_line", "log.level", "log.format"} {
			errorFor(t, err, key)
		}
	})
	t.Run("unknown table reported once", func(t *testing.T) {
		data := base + lines(`[foo]`, `bar = 1`, `[foo.baz]`, `x = 1`)
		_, err := Parse([]byte(data), t.TempDir(), nil)
		if errs := configErrors(err); len(errs) != 1 || errs[0].Key != "foo" {
			t.Errorf("errors = %v", err)
		}
	})
	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		data := base + lines(`[tls]`, `cert_file = "nope.pem"`, `key_file = "nope.pem"`)
		_, err := Parse([]byte(data), t.TempDir(), nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
	})
}

func TestParseValidVariants(t *testing.T) {
	tests := []struct{ name, data string }{
		{"passthrough needs no master", withBase(`master_user = "proxy"`, `login = "passthrough"`)},
		{"inline tables", lines(
			`imap = { listen = "127.0.0.1:0", allow_cleartext = true, upstream = { address = "localhost:143", login = "passthrough" } }`)},
		{"dotted keys", lines(
			`imap.listen = "127.0.0.1:0"`, `imap.allow_cleartext = true`,
			`imap.upstream.address = "[::1]:143"`, `imap.upstream.login = "passthrough"`)},
		{"durations with units", base + lines(`dial_timeout = "1h2m3s"`, `[limits]`, `idle_timeout = "1s"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.data), t.TempDir(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLineOf(t *testing.T) {
	data := lines(
		`# comment`,
		`[imap]`,
		`listen = "x"`,
		``,
		`[imap.upstream]`,
		`address = "y"`,
		`[log]`,
		`x = { y = 1, z = 2 }`,
		``,
		`a.b = 3`,
	)
	tests := []struct {
		key  []string
		want int
	}{
		{[]string{"imap"}, 2},
		{[]string{"imap", "listen"}, 3},
		{[]string{"imap", "upstream"}, 5},
		{[]string{"imap", "upstream", "address"}, 6},
		{[]string{"log", "x", "z"}, 8},
		{[]string{"log", "a", "b"}, 10},
		{[]string{"imap", "nope"}, 0},
		{[]string{"nope"}, 0},
	}
	for _, tt := range tests {
		if got := lineOf(data, tt.key); got != tt.want {
			t.Errorf("lineOf(%v) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if got := lineOfNearest(data, []string{"imap", "upstream", "master_user"}); got != 5 {
		t.Errorf("lineOfNearest = %d, want 5", got)
	}
}
