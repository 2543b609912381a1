package config

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func keyBytes() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestPortalDefaults(t *testing.T) {
	c, err := Parse([]byte(base+lines(`[portal]`, `url = "https://mail.example.org/app-passwords"`)), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Portal.PortalServer
	if p.Enabled() || p.Key != nil {
		t.Errorf("portal runs without a listener: %+v", p)
	}
	if p.Issuer != "passgate" || p.SessionTTL.Duration != 8*time.Hour {
		t.Errorf("issuer %q, session_ttl %s", p.Issuer, p.SessionTTL.Duration)
	}
	// base has only imap.listen on port 0, and no SMTP listener.
	if p.IMAPHost != "mail.example.org" || p.IMAPSecurity != "starttls" || p.IMAPPort != 143 ||
		p.SMTPHost != "mail.example.org" || p.SMTPSecurity != "starttls" || p.SMTPPort != 587 {
		t.Errorf("mail settings %+v", p)
	}
}

func TestPortalFull(t *testing.T) {
	dir := fixture(t)
	writeFile(t, filepath.Join(dir, "portal-key"), hexKey+"\n")
	data := lines(
		`[imap]`,
		`listen_tls = "0.0.0.0:1993"`,
		`[imap.upstream]`,
		`address = "127.0.0.1:143"`,
		`master_user = "proxy"`,
		`master_secret = "s3cret"`,
		`[tls]`,
		`cert_file = "cert.pem"`,
		`key_file = "key.pem"`,
		`[portal]`,
		`url = "https://portal.example.org/"`,
		`listen = "127.0.0.1:8080"`,
		`listen_tls = "0.0.0.0:8443"`,
		`key_file = "portal-key"`,
		`issuer = "Example Mail"`,
		`session_ttl = "1h"`,
		`trusted_proxies = ["127.0.0.1/8", "::1/128"]`,
		`imap_host = "imap.example.org"`,
		`smtp_port = 2525`,
		`smtp_security = "tls"`,
	)
	c, err := Parse([]byte(data), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Portal.PortalServer
	if !p.Enabled() || !bytes.Equal(p.Key, keyBytes()) || p.KeyFrom != "file "+filepath.Join(dir, "portal-key") {
		t.Errorf("key %x from %q", p.Key, p.KeyFrom)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if p.Issuer != "Example Mail" || p.SessionTTL.Duration != time.Hour || len(p.TrustedProxies) != 2 ||
		p.TrustedProxies[0] != want[0] || p.TrustedProxies[1] != want[1] {
		t.Errorf("portal %+v", p)
	}
	if p.IMAPHost != "imap.example.org" || p.IMAPSecurity != "tls" || p.IMAPPort != 1993 ||
		p.SMTPHost != "imap.example.org" || p.SMTPSecurity != "tls" || p.SMTPPort != 2525 {
		t.Errorf("mail settings %+v", p)
	}

	// The environment wins over the file, in any of the accepted encodings.
	for _, enc := range []string{hexKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"} {
		c, err := Parse([]byte(data), dir, envMap(map[string]string{"PASSGATE_PORTAL_KEY": enc}))
		if err != nil {
			t.Fatal(err)
		}
		if p := c.Portal.PortalServer; !bytes.Equal(p.Key, keyBytes()) || p.KeyFrom != "env PASSGATE_PORTAL_KEY" {
			t.Errorf("%s: key %x from %q", enc, p.Key, p.KeyFrom)
		}
	}
}

func TestPortalErrors(t *testing.T) {
	dir := fixture(t)
	writeFile(t, filepath.Join(dir, "portal-key"), hexKey)
	writeFile(t, filepath.Join(dir, "short-key"), "00112233")
	tests := []struct {
		name, portal, key, msg string
	}{
		{"no url", `listen = "127.0.0.1:8080"` + "\nkey_file = \"portal-key\"", "portal.url", "required with portal.listen"},
		{"no key", `url = "https://x.example"` + "\nlisten = \"127.0.0.1:8080\"", "portal.key_file", "openssl rand -hex 32"},
		{"short key", `url = "https://x.example"` + "\nlisten = \"127.0.0.1:8080\"\nkey_file = \"short-key\"", "portal.key_file", "not 32 bytes"},
		{"missing key file", `url = "https://x.example"` + "\nlisten = \"127.0.0.1:8080\"\nkey_file = \"nope\"", "portal.key_file", "no such file"},
		{"http elsewhere", `url = "http://mail.example.org"` + "\nlisten = \"127.0.0.1:8080\"\nkey_file = \"portal-key\"", "portal.url", "only on localhost"},
		{"tls without cert", `url = "https://x.example"` + "\nlisten_tls = \"127.0.0.1:8443\"\nkey_file = \"portal-key\"", "portal.listen_tls", "needs tls.cert_file"},
		{"bad listen", `url = "https://x.example"` + "\nlisten = \"8080\"\nkey_file = \"portal-key\"", "portal.listen", "not host:port"},
		{"bad security", `imap_security = "ssl"`, "portal.imap_security", `"ssl" is not one of tls, starttls, none`},
		{"bad port", `smtp_port = 70000`, "portal.smtp_port", "not a TCP port"},
		{"short session", `session_ttl = "1m"`, "portal.session_ttl", "below the minimum of 5m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+"[portal]\n"+tc.portal+"\n"), dir, nil)
			e := errorFor(t, err, tc.key)
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", e.Error(), tc.msg)
			}
			if strings.Contains(err.Error(), hexKey) {
				t.Error("an error shows the key")
			}
		})
	}
	t.Run("loopback http is fine", func(t *testing.T) {
		for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080"} {
			_, err := Parse([]byte(base+"[portal]\nurl = \""+u+"\"\nlisten = \"127.0.0.1:8080\"\nkey_file = \"portal-key\"\n"), dir, nil)
			if err != nil {
				t.Errorf("%s: %v", u, err)
			}
		}
	})
}

// TestPortalMailSecurity: "none" (no TLS) is what a cleartext-only loopback
// listener gets by default, as in the demo, and is refused for any host a
// client would reach over a network.
func TestPortalMailSecurity(t *testing.T) {
	dir := fixture(t)
	// IMAP and SMTP plain listeners with fixed ports and allow_cleartext.
	cleartext := lines(
		`[imap]`,
		`listen = "127.0.0.1:1143"`,
		`allow_cleartext = true`,
		`[imap.upstream]`,
		`address = "127.0.0.1:143"`,
		`master_user = "proxy"`,
		`master_secret = "s3cret"`,
		`[smtp]`,
		`listen = "127.0.0.1:1587"`,
		`allow_cleartext = true`,
		`[smtp.upstream]`,
		`address = "127.0.0.1:587"`,
		`login = "xclient"`,
	)
	cert := lines(`[tls]`, `cert_file = "cert.pem"`, `key_file = "key.pem"`)
	tests := []struct {
		name, extra, portal string
		imapSec, smtpSec    string
		imapPort, smtpPort  int
	}{
		{"demo: loopback ip", "", `imap_host = "127.0.0.1"`, "none", "none", 1143, 1587},
		{"localhost from url", "", `url = "http://localhost:8080/"`, "none", "none", 1143, 1587},
		{"ipv6 loopback", "", `imap_host = "::1"`, "none", "none", 1143, 1587},
		{"smtp host elsewhere", "", `imap_host = "127.0.0.1"` + "\n" + `smtp_host = "smtp.example.org"`, "none", "starttls", 1143, 1587},
		{"network host", "", `imap_host = "mail.example.org"`, "starttls", "starttls", 1143, 1587},
		{"cert offers starttls", cert, `imap_host = "127.0.0.1"`, "starttls", "starttls", 1143, 1587},
		{"explicit none", cert, `imap_host = "localhost"` + "\n" + `imap_security = "none"` + "\n" + `smtp_security = "none"`, "none", "none", 1143, 1587},
		{"explicit starttls on loopback", "", `imap_host = "127.0.0.1"` + "\n" + `imap_security = "starttls"`, "starttls", "none", 1143, 1587},
		{"explicit tls, standard port", "", `imap_host = "127.0.0.1"` + "\n" + `smtp_security = "tls"`, "none", "tls", 1143, 465},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(cleartext+tc.extra+"[portal]\n"+tc.portal+"\n"), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := c.Portal.PortalServer
			if p.IMAPSecurity != tc.imapSec || p.SMTPSecurity != tc.smtpSec || p.IMAPPort != tc.imapPort || p.SMTPPort != tc.smtpPort {
				t.Errorf("imap %s:%d, smtp %s:%d; want imap %s:%d, smtp %s:%d", p.IMAPSecurity, p.IMAPPort,
					p.SMTPSecurity, p.SMTPPort, tc.imapSec, tc.imapPort, tc.smtpSec, tc.smtpPort)
			}
		})
	}

	refused := []struct {
		name, portal, key string
	}{
		{"imap on a network host", `imap_host = "mail.example.org"` + "\n" + `imap_security = "none"`, "portal.imap_security"},
		{"imap on a private address", `imap_host = "192.168.1.10"` + "\n" + `imap_security = "none"`, "portal.imap_security"},
		{"smtp on a network host", `imap_host = "127.0.0.1"` + "\n" + `smtp_host = "smtp.example.org"` + "\n" + `smtp_security = "none"`, "portal.smtp_security"},
		{"smtp inherits a network host", `url = "https://mail.example.org/"` + "\n" + `smtp_security = "none"`, "portal.smtp_security"},
		{"no host at all", `imap_security = "none"`, "portal.imap_security"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := Parse([]byte(cleartext+"[portal]\n"+tc.portal+"\n"), dir, nil)
			e := errorFor(t, err, tc.key)
			if !strings.Contains(e.Error(), "cleartext logins over a network are refused") {
				t.Errorf("error %q does not say why", e.Error())
			}
		})
	}
}

// TestPortalPOP3: the portal's POP3 settings follow [pop3]'s listeners,
// and stay empty without them.
func TestPortalPOP3(t *testing.T) {
	portal := lines(`[portal]`, `url = "https://mail.example.org/"`)
	c, err := Parse([]byte(base+portal), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Portal.PortalServer; p.POP3Host != "" || p.POP3Port != 0 || p.POP3Security != "" {
		t.Errorf("POP3 settings without [pop3]: %q %d %q", p.POP3Host, p.POP3Port, p.POP3Security)
	}
	dir := fixture(t)
	pop3 := lines(`[tls]`, `cert_file = "cert.pem"`, `key_file = "key.pem"`,
		`[pop3]`, `listen = "0.0.0.0:110"`, `listen_tls = "0.0.0.0:1995"`,
		`[pop3.upstream]`, `address = "127.0.0.1:110"`, `master_user = "proxy"`, `master_secret = "s3cret"`)
	c, err = Parse([]byte(base+pop3+portal), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Portal.PortalServer; p.POP3Host != "mail.example.org" || p.POP3Port != 1995 || p.POP3Security != "tls" {
		t.Errorf("POP3 settings %q %d %q, want mail.example.org 1995 tls", p.POP3Host, p.POP3Port, p.POP3Security)
	}
	c, err = Parse([]byte(base+pop3+portal+lines(`pop3_host = "pop.example.org"`, `pop3_security = "starttls"`)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Portal.PortalServer; p.POP3Host != "pop.example.org" || p.POP3Port != 110 || p.POP3Security != "starttls" {
		t.Errorf("POP3 settings %q %d %q, want pop.example.org 110 starttls", p.POP3Host, p.POP3Port, p.POP3Security)
	}
	if _, err := Parse([]byte(base+pop3+portal+lines(`pop3_security = "sometimes"`)), dir, nil); err == nil ||
		!strings.Contains(err.Error(), "portal.pop3_security") {
		t.Errorf("a bad pop3_security: %v, want an error naming portal.pop3_security", err)
	}
}
