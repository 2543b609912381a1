package config

import (
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy/upstream"
)

// login = "xoauth2" / "oauthbearer" is accepted with [oauth], for IMAP and
// SMTP, and refused without it, naming the key.
func TestOAuthLoginModes(t *testing.T) {
	dir := fixture(t)
	imap := lines(`[imap]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`,
		`[imap.upstream]`, `address = "127.0.0.1:993"`, `tls = "tls"`, `login = "xoauth2"`)
	smtp := lines(`[smtp]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`,
		`[smtp.upstream]`, `address = "127.0.0.1:587"`, `tls = "starttls"`, `login = "oauthbearer"`)
	section := lines(`[oauth]`, `mode = "client_credentials"`, `provider = "microsoft"`, `tenant = "t"`,
		`client_id = "app"`, `client_secret = "s"`)

	c, err := Parse([]byte(imap+smtp+section), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.IMAP.Upstream.Login != upstream.ModeXOAuth2 || c.SMTP.Upstream.Login != upstream.ModeOAuthBearer {
		t.Errorf("logins %q, %q", c.IMAP.Upstream.Login, c.SMTP.Upstream.Login)
	}

	_, err = Parse([]byte(imap+smtp), dir, nil)
	for _, key := range []string{"imap.upstream.login", "smtp.upstream.login"} {
		if e := errorFor(t, err, key); !strings.Contains(e.Msg, "[oauth]") || e.Line == 0 {
			t.Errorf("%s without [oauth]: %v, want a line and [oauth]", key, e)
		}
	}
	for _, e := range configErrors(err) {
		if strings.Contains(e.Key, "master") {
			t.Errorf("an OAuth login asks for a master user: %v", e)
		}
	}
}
