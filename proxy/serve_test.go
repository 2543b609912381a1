package proxy

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn"
)

// CheckServe refuses, naming what is missing, every front-end set-up no
// client could log in to, and passes the ones it could.
func TestCheckServe(t *testing.T) {
	auth, cfg := Authenticator(&authn.Verifier{}), &tls.Config{}
	for _, c := range []struct {
		auth      Authenticator
		up        any
		cfg       *tls.Config
		cleartext bool
		implicit  bool
		want      string // "" passes
	}{
		{nil, "up", cfg, true, false, "Server.Auth is nil"},
		{auth, nil, cfg, true, false, "Server.Upstream is nil"},
		{auth, "up", nil, false, true, "ServeTLS: TLSConfig is nil"},
		{auth, "up", nil, false, false, "no client could log in"},
		{auth, "up", nil, true, false, ""},
		{auth, "up", cfg, false, false, ""},
		{auth, "up", cfg, false, true, ""},
	} {
		err := CheckServe("imap", c.auth, c.up, c.cfg, c.cleartext, c.implicit)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want nil", c, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "imap: ")):
			t.Errorf("%+v: %v, want an imap error saying %q", c, err, c.want)
		}
	}
	if got := OneLine(" a\r\n* OK injected\n"); got != "a  * OK injected" {
		t.Errorf("OneLine = %q", got)
	}
}
