package pop3

import (
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy"
)

// TestReloadedSettings: SetLimits and SetMFAMessage (a configuration
// reload) reach the next connection.
func TestReloadedSettings(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxFailedLogins = 3 })
	e.srv.SetLimits(proxy.Limits{MaxFailedLogins: 1})
	e.srv.SetMFAMessage("Create an app password at the new portal")
	c := e.dial(t)
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+lt.MFAUser+"\x00"+lt.MFASecret)); r != "-ERR [AUTH] Create an app password at the new portal" {
		t.Fatalf("MFA reply after the reload: %q", r)
	}
	if !c.Closed() {
		t.Fatal("the connection stayed open after one failed login with max_failed_logins reloaded to 1")
	}
}
