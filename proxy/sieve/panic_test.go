package sieve

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn"
	lt "github.com/passgate/passgate/internal/linetest"
)

// panickyAuth panics on every login, as a bug in the login decision would.
type panickyAuth struct{}

func (panickyAuth) Verify(context.Context, authn.Attempt) (authn.Decision, error) {
	panic("login decision bug")
}

// TestPanicEndsOnlyTheConnection: a panic while serving one client answers
// it with BYE and leaves the server (and this test binary) running, as
// IMAP and POP3 do.
func TestPanicEndsOnlyTheConnection(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Auth = panickyAuth{} })
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + lt.AppUser + "\x00" + lt.AppSecret))
	for range 2 {
		c := e.dial(t, "PLAIN LOGIN")
		if r := c.Cmd(`AUTHENTICATE "PLAIN" "` + plain + `"`); !strings.HasPrefix(r, "BYE") {
			t.Fatalf("after a panic: %q, want BYE", r)
		}
	}
}
