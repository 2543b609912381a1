package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/proxy/upstream"
)

// withDirectory is base plus a [directory] table with the given lines,
// which start at line 9.
func withDirectory(l ...string) string { return base + lines(`[directory]`) + lines(l...) }

func TestDirectoryDefaults(t *testing.T) {
	c, err := Parse([]byte(base), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Directory
	if d.Kind != DirectoryStore || d.Cache != 0 || d.MFA != "" || d.DefaultDomain != "" {
		t.Errorf("directory defaults = %+v; want kind store, the component's cache and MFA defaults", d)
	}
}

func TestDirectoryParse(t *testing.T) {
	dir := fixture(t)
	writeFile(t, filepath.Join(dir, "bind-pw"), "bind-from-file\n")
	tests := []struct {
		name  string
		data  string
		env   map[string]string
		check func(t *testing.T, d Directory)
	}{
		{"LDAP", withDirectory(`kind = "ldap"`, `default_domain = "Example.ORG"`, `cache = "30s"`, `mfa = "all"`,
			`[directory.ldap]`, `preset = "activedirectory"`, `url = "ldaps://dc1.corp.example.com"`, `ca_file = "ca.pem"`,
			`bind_dn = "CN=svc,DC=corp"`, `bind_password_file = "bind-pw"`, `base_dn = "DC=corp"`,
			`mfa_group = "CN=MFA,DC=corp"`, `disabled_attribute = "userAccountControl&2"`, `admin_filter = "(title=boss)"`,
			`membership = "search"`, `group_filter = "(member:1.2.840.113556.1.4.1941:={dn})"`, `pool_size = 2`, `timeout = "2s"`),
			nil, func(t *testing.T, d Directory) {
				l := d.LDAP
				if d.Kind != DirectoryLDAP || d.DefaultDomain != "example.org" || time.Duration(d.Cache) != 30*time.Second || d.MFA != "all" {
					t.Errorf("directory = %+v", d)
				}
				if l.BindPassword != "bind-from-file" || l.BindPasswordFrom != "file "+filepath.Join(dir, "bind-pw") ||
					l.CAFile != filepath.Join(dir, "ca.pem") || l.PoolSize != 2 || l.Timeout.Duration != 2*time.Second {
					t.Errorf("ldap = %+v", l)
				}
				if l.DisabledRule != (directory.AttrRule{Name: "userAccountControl", Mask: 2}) || !l.MFARule.IsZero() {
					t.Errorf("rules: disabled %+v, mfa %+v", l.DisabledRule, l.MFARule)
				}
				if cfg := l.TLSConfig; cfg == nil || cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 {
					t.Errorf("TLSConfig = %+v", cfg)
				}
			}},
		{"LDAPEnvPasswordWins", withDirectory(`kind = "ldap"`, `[directory.ldap]`, `url = "ldap://ldap.example.org"`,
			`start_tls = true`, `bind_dn = "cn=svc"`, `bind_password_file = "missing"`, `base_dn = "dc=x"`, `user_filter = "(uid={local})"`),
			map[string]string{ldapBindPasswordEnv: "from-env"}, func(t *testing.T, d Directory) {
				if d.LDAP.BindPassword != "from-env" || d.LDAP.BindPasswordFrom != "env "+ldapBindPasswordEnv {
					t.Errorf("bind password from %q", d.LDAP.BindPasswordFrom)
				}
			}},
		{"LDAPLoopbackPlain", withDirectory(`kind = "ldap"`, `[directory.ldap]`, `url = "ldap://127.0.0.1:389"`,
			`base_dn = "dc=x"`, `user_filter = "(uid={local})"`), nil, func(t *testing.T, d Directory) {
			if d.LDAP.BindDN != "" || d.LDAP.BindPassword != "" {
				t.Errorf("anonymous ldap = %+v", d.LDAP)
			}
		}},
		{"CacheOff", withDirectory(`kind = "ldap"`, `cache = "off"`, `[directory.ldap]`, `url = "ldaps://l"`, `base_dn = "dc=x"`, `preset = "openldap"`),
			nil, func(t *testing.T, d Directory) {
				if d.Cache >= 0 {
					t.Errorf("cache = %v, want negative (off)", d.Cache)
				}
			}},
		{"Dovecot", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `auth_socket = "run/auth-passgate"`,
			`userdb_socket = "127.0.0.1:9001"`, `mfa = "passgate_mfa=yes"`, `admin = "passgate_admin"`),
			nil, func(t *testing.T, d Directory) {
				v := d.Dovecot
				if v.AuthSocket != filepath.Join(dir, "run/auth-passgate") || v.UserdbSocket != "127.0.0.1:9001" ||
					v.MFARule != (directory.AttrRule{Name: "passgate_mfa", Value: "yes"}) || v.AdminRule.Name != "passgate_admin" ||
					!v.DisabledRule.IsZero() {
					t.Errorf("dovecot = %+v", v)
				}
			}},
		{"DovecotUnixPrefix", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `auth_socket = "unix:/run/dovecot/auth-client"`),
			nil, func(t *testing.T, d Directory) {
				if d.Dovecot.AuthSocket != "/run/dovecot/auth-client" {
					t.Errorf("auth_socket = %q", d.Dovecot.AuthSocket)
				}
			}},
		{"IMAP", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "imap.example.org:993"`, `tls = "tls"`,
			`ca_file = "ca.pem"`, `forward_client_ip = true`), nil, func(t *testing.T, d Directory) {
			i := d.IMAP
			if i.TLS != upstream.TLSImplicit || !i.ForwardClientIP || i.TLSConfig == nil || i.TLSConfig.ServerName != "imap.example.org" ||
				i.TLSConfig.RootCAs == nil {
				t.Errorf("imap = %+v", i)
			}
		}},
		{"IMAPLoopbackPlain", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "127.0.0.1:143"`, `tls = "none"`),
			nil, func(t *testing.T, d Directory) {
				if d.IMAP.TLSConfig != nil {
					t.Errorf("imap TLS config for tls none: %+v", d.IMAP.TLSConfig)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), dir, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Directory)
		})
	}
}

func TestDirectoryErrors(t *testing.T) {
	dir := fixture(t)
	ldap := func(l ...string) string {
		return withDirectory(append([]string{`kind = "ldap"`, `[directory.ldap]`}, l...)...) // keys from line 11
	}
	const ok = `base_dn = "dc=x"`
	tests := []struct {
		name string
		data string
		key  string
		line int
		msg  string
	}{
		{"UnknownKind", withDirectory(`kind = "nis"`), "directory.kind", 9, `"nis" is not one of store, ldap, dovecot, imap`},
		{"UnknownKey", withDirectory(`knd = "ldap"`), "directory.knd", 9, "unknown key"},
		{"UnknownLDAPKey", ldap(`url = "ldaps://l"`, `bind_pasword = "Secr3tPw"`), "directory.ldap.bind_pasword", 12, "unknown key"},
		{"BadDomain", withDirectory(`default_domain = "exa mple.org"`), "directory.default_domain", 9, "not a mail domain"},
		{"TinyCache", withDirectory(`cache = "100ms"`), "directory.cache", 9, "minimum"},
		{"CacheNoUnit", withDirectory(`cache = "60"`), "directory.cache", 9, "no unit"},
		{"MFA", withDirectory(`mfa = "some"`), "directory.mfa", 9, `"some" is not one of group, all, enrolled`},
		{"OtherKindsSection", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `auth_socket = "/run/a"`,
			`[directory.ldap]`, `url = "ldaps://l"`), "directory.ldap", 12, `set, but directory.kind is "dovecot"`},
		{"StoreWithSection", withDirectory(`[directory.imap]`, `address = "a:1"`), "directory.imap", 9, `set, but directory.kind is "store"`},
		{"LDAPNoURL", ldap(ok, `preset = "openldap"`), "directory.ldap.url", 10, "required"},
		{"LDAPScheme", ldap(ok, `preset = "openldap"`, `url = "http://l"`), "directory.ldap.url", 13, "scheme"},
		{"LDAPNoBase", ldap(`preset = "openldap"`, `url = "ldaps://l"`), "directory.ldap.base_dn", 10, "required"},
		{"LDAPNoFilter", ldap(ok, `url = "ldaps://l"`), "directory.ldap.user_filter", 10, "required without a preset"},
		{"LDAPPreset", ldap(ok, `url = "ldaps://l"`, `preset = "novell"`), "directory.ldap.preset", 13, `"novell" is not one of`},
		{"LDAPPlaintext", ldap(ok, `preset = "ad"`, `url = "ldap://dc.corp.example.com"`), "directory.ldap.url", 13, "in clear"},
		{"LDAPCAWithoutTLS", ldap(ok, `preset = "ad"`, `url = "ldap://127.0.0.1"`, `ca_file = "ca.pem"`), "directory.ldap.ca_file", 14, "no TLS"},
		{"LDAPStartTLSOverLDAPS", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `start_tls = true`), "directory.ldap.start_tls", 14, "not ldaps"},
		{"LDAPCANotPEM", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `ca_file = "not-pem.txt"`), "directory.ldap.ca_file", 14, "no PEM"},
		{"LDAPMembership", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `membership = "nested"`), "directory.ldap.membership", 14, "not one of memberof, search"},
		{"LDAPAttribute", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `mfa_attribute = "flags&x"`), "directory.ldap.mfa_attribute", 14, "mask"},
		{"LDAPNoBindPassword", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `bind_dn = "cn=svc"`), "directory.ldap.bind_password", 10, "required with bind_dn"},
		{"LDAPPasswordTwice", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `bind_dn = "cn=svc"`, `bind_password = "Secr3tPw"`,
			`bind_password_file = "master-secret"`), "directory.ldap.bind_password_file", 16, "only one"},
		{"LDAPPasswordWithoutDN", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `bind_password = "Secr3tPw"`), "directory.ldap.bind_dn", 10, "required with a bind password"},
		{"LDAPEmptyPasswordFile", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `bind_dn = "cn=svc"`, `bind_password_file = "empty-secret"`),
			"directory.ldap.bind_password_file", 15, "empty"},
		{"LDAPNegativeTimeout", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `timeout = "-1s"`), "directory.ldap.timeout", 14, "negative"},
		{"LDAPNegativePool", ldap(ok, `preset = "ad"`, `url = "ldaps://l"`, `pool_size = -1`), "directory.ldap.pool_size", 14, "negative"},
		{"DovecotNoSocket", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `service = "imap"`), "directory.dovecot.auth_socket", 10, "required"},
		{"DovecotBadRule", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `auth_socket = "/a"`, `admin = "a b"`),
			"directory.dovecot.admin", 12, "attribute rule"},
		{"DovecotTCPNoHost", withDirectory(`kind = "dovecot"`, `[directory.dovecot]`, `auth_socket = ":9000"`),
			"directory.dovecot.auth_socket", 11, "host and a port"},
		{"IMAPNoAddress", withDirectory(`kind = "imap"`, `[directory.imap]`, `tls = "tls"`), "directory.imap.address", 10, "required"},
		{"IMAPBadAddress", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "imap.example.org"`), "directory.imap.address", 11, "host:port"},
		{"IMAPPlainRemote", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "imap.example.org:143"`, `tls = "none"`),
			"directory.imap.tls", 12, "in clear"},
		{"IMAPCAWithoutTLS", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "127.0.0.1:143"`, `tls = "none"`, `ca_file = "ca.pem"`),
			"directory.imap.ca_file", 13, "tls is none"},
		{"IMAPTLSMode", withDirectory(`kind = "imap"`, `[directory.imap]`, `address = "a:1"`, `tls = "ssl"`), "directory.imap.tls", 12, "not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), dir, nil)
			e := errorFor(t, err, tt.key)
			if e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q (line %d), want line %d saying %q", e, e.Line, tt.line, tt.msg)
			}
			if strings.Contains(err.Error(), "Secr3t") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestREADMEDirectoryExamples keeps the examples of README.md's "Accounts
// from your directory" working: each full example (a [directory] table
// with its kind's section) parses, with the files it names in place.
func TestREADMEDirectoryExamples(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Accounts from your directory\n")
	if start < 0 {
		t.Fatal("README.md has no section \"Accounts from your directory\"")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	dir := fixture(t)
	for _, name := range []string{"ldap-ca.pem", "corp-root-ca.pem"} {
		pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), string(pem))
	}
	for _, name := range []string{"ldap-bind-password", "ad-bind-password"} {
		writeFile(t, filepath.Join(dir, name), "bind-secret\n")
	}
	kinds := map[DirectoryKind]bool{}
	for _, block := range strings.Split(section, "```toml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.HasPrefix(block, "[directory]\n") || !strings.Contains(block, "\n[directory.") {
			continue // a fragment
		}
		data := base + strings.ReplaceAll(block, "/etc/passgate/", dir+"/")
		c, err := Parse([]byte(data), dir, nil)
		if err != nil {
			t.Errorf("README example does not load:\n%s\n%v", block, err)
			continue
		}
		kinds[c.Directory.Kind] = true
	}
	if len(kinds) != 3 {
		t.Errorf("README examples of kinds %v, want ldap, dovecot and imap", kinds)
	}
}
