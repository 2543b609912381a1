package integration

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// closeDeadline is how long a session may survive its revocation before the
// test fails. passgate aims at about a second; the deadline is generous
// because the machine is shared and noisy.
const closeDeadline = 10 * time.Second

// idler is a client sitting in IDLE, as a phone's mail app does.
type idler struct {
	c    *imapclient.Client
	idle *imapclient.IdleCommand
	// closedAt receives the time the connection closed.
	closedAt chan time.Time
}

// idling logs in and leaves the client in IDLE, noting when its connection
// closes.
func idling(t testing.TB, pg *Passgate, user, secret string) *idler {
	t.Helper()
	c := pg.login(t, viaTLS, user, secret)
	selectInbox(t, c)
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	i := &idler{c: c, idle: idle, closedAt: make(chan time.Time, 1)}
	go func() {
		<-c.Closed()
		i.closedAt <- time.Now()
	}()
	return i
}

// waitClosed waits until the session is closed and returns when that
// happened.
func (i *idler) waitClosed(t testing.TB) time.Time {
	t.Helper()
	select {
	case at := <-i.closedAt:
		return at
	case <-time.After(closeDeadline):
		t.Fatalf("session still open %v after its revocation", closeDeadline)
		return time.Time{}
	}
}

// stillOpen checks that a session was not closed along with others: it ends
// IDLE and runs NOOP through passgate and Dovecot.
func (i *idler) stillOpen(t testing.TB, what string) {
	t.Helper()
	if err := i.idle.Close(); err != nil {
		t.Fatalf("%s: DONE: %v", what, err)
	}
	if err := i.idle.Wait(); err != nil {
		t.Fatalf("%s: IDLE ended with %v", what, err)
	}
	if err := i.c.Noop().Wait(); err != nil {
		t.Fatalf("%s: NOOP: %v (was it closed too?)", what, err)
	}
}

// revokeTimed runs a CLI command that revokes, and logs when each session
// closed relative to the command's return (negative: before it returned).
func revokeTimed(t testing.TB, pg *Passgate, sessions []*idler, args ...string) {
	t.Helper()
	start := time.Now()
	pg.run(t, args...)
	returned := time.Now()
	for n, s := range sessions {
		closed := s.waitClosed(t)
		t.Logf("session %d closed %v after `passgate %s %s` returned (%v after it started)",
			n+1, closed.Sub(returned).Round(time.Microsecond), args[0], args[1], closed.Sub(start).Round(time.Microsecond))
	}
}

// TestRevokeEndsSession revokes an app password while a client idles with it:
// passgate must end that session, and only that one, and refuse the password
// from then on. The delay from the revoke command's return to the close is
// logged.
func TestRevokeEndsSession(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	a := newAccount(t, d, pg, true)
	other := pg.createAppPassword(t, a.User, "other device")

	victim := idling(t, pg, a.User, a.AppPass)
	survivor := idling(t, pg, a.User, other.Password)

	revokeTimed(t, pg, []*idler{victim}, "apppass", "revoke", a.User, a.AppID)
	survivor.stillOpen(t, "the session of another app password")
	wantCode(t, pg.loginError(t, viaTLS, a.User, a.AppPass), imap.ResponseCodeAuthenticationFailed, "Invalid credentials")
	pg.login(t, viaTLS, a.User, other.Password)
	assertNoSecrets(t, pg.Output(), a.AppPass, other.Password, a.Primary, masterSecret)

	var list []appPassword
	if err := json.Unmarshal([]byte(pg.run(t, "apppass", "list", a.User, "--json")), &list); err != nil {
		t.Fatalf("apppass list --json: %v", err)
	}
	if len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("apppass list after revoke: %+v, want only %s", list, other.ID)
	}
}

// TestRevokeAll ends every session of two users with one command, and leaves
// a third user alone.
func TestRevokeAll(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	a := newAccount(t, d, pg, true)
	b := newAccount(t, d, pg, true)
	c := newAccount(t, d, pg, true)
	a2 := pg.createAppPassword(t, a.User, "second device")

	sessions := []*idler{
		idling(t, pg, a.User, a.AppPass),
		idling(t, pg, a.User, a2.Password),
		idling(t, pg, b.User, b.AppPass),
	}
	bystander := idling(t, pg, c.User, c.AppPass)

	revokeTimed(t, pg, sessions, "apppass", "revoke-all", a.User, b.User)
	bystander.stillOpen(t, "another user's session")
	for _, login := range []struct{ user, secret string }{{a.User, a.AppPass}, {a.User, a2.Password}, {b.User, b.AppPass}} {
		wantCode(t, pg.loginError(t, viaTLS, login.user, login.secret), imap.ResponseCodeAuthenticationFailed, "Invalid credentials")
	}
}

// TestAccountChangesEndSessions checks the account-level changes that must
// end live sessions: disabling an account ends all of them; turning MFA on
// ends the sessions that logged in with the primary password only.
func TestAccountChangesEndSessions(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})

	t.Run("disable", func(t *testing.T) {
		a := newAccount(t, d, pg, false)
		viaApp := idling(t, pg, a.User, a.AppPass)
		viaPrimary := idling(t, pg, a.User, a.Primary)
		revokeTimed(t, pg, []*idler{viaApp, viaPrimary}, "user", "disable", a.User)
		wantCode(t, pg.loginError(t, viaTLS, a.User, a.AppPass), imap.ResponseCodeAuthenticationFailed, "Invalid credentials")
	})
	t.Run("mfa on", func(t *testing.T) {
		a := newAccount(t, d, pg, false)
		viaApp := idling(t, pg, a.User, a.AppPass)
		viaPrimary := idling(t, pg, a.User, a.Primary)
		revokeTimed(t, pg, []*idler{viaPrimary}, "user", "mfa", a.User, "on")
		viaApp.stillOpen(t, "the app-password session")
		wantCode(t, pg.loginError(t, viaTLS, a.User, a.Primary), imap.ResponseCodeAlert, portalURL)
	})
}
