package storetest

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// testCheckSessions: CheckSessions says, in the order asked, what exists
// now of each session's account and app password.
func testCheckSessions(t *testing.T, o Opener) {
	s := o.New(t)
	mustCreateAccount(t, s, "alice")
	mustCreateAccount(t, s, "bob")
	ps := mustCreateAppPasswords(t, s, "alice", 2)
	full := appPass("alice", "full", t0.Add(time.Hour))
	full.Scopes = []store.Scope{store.ScopeIMAP}
	full.Expires = t0.Add(48 * time.Hour)
	full.AllowFrom = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	mustCreateAppPassword(t, s, full)
	bobs := mustCreateAppPasswords(t, s, "bob", 1)
	if err := s.RevokeAppPassword(t.Context(), "alice", ps[1].ID); err != nil {
		t.Fatalf("RevokeAppPassword: %v", err)
	}
	if err := s.UpdateAccount(t.Context(), "bob", func(a *store.Account) error {
		a.Disabled, a.MFA, a.PasswordHash = true, true, fakeHash+"x"
		return nil
	}); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	alice, bob := getAccount(t, s, "alice"), getAccount(t, s, "bob")

	refs := []store.SessionRef{
		{Username: "alice", AppPasswordID: ps[0].ID},
		{Username: "alice", AppPasswordID: ps[1].ID}, // revoked
		{Username: "alice"},                          // primary password
		{Username: "bob", AppPasswordID: bobs[0].ID},
		{Username: "nobody", AppPasswordID: ps[0].ID},
		{Username: "bob", AppPasswordID: full.ID}, // alice's ID under bob
		{Username: "alice", AppPasswordID: full.ID},
		{Username: "alice", AppPasswordID: ps[0].ID}, // asked twice
	}
	want := []struct {
		acct *store.Account
		pass *store.AppPassword
	}{
		{&alice, &ps[0]}, {&alice, nil}, {&alice, nil}, {&bob, &bobs[0]},
		{nil, nil}, {&bob, nil}, {&alice, &full}, {&alice, &ps[0]},
	}
	got, err := s.CheckSessions(t.Context(), refs)
	if err != nil {
		t.Fatalf("CheckSessions: %v", err)
	}
	if len(got) != len(refs) {
		t.Fatalf("CheckSessions returned %d states for %d refs", len(got), len(refs))
	}
	for i, w := range want {
		what := fmt.Sprintf("ref %d %+v", i, refs[i])
		switch g := got[i]; {
		case (g.Account == nil) != (w.acct == nil):
			t.Fatalf("%s: account %+v, want %+v", what, g.Account, w.acct)
		case (g.AppPassword == nil) != (w.pass == nil):
			t.Fatalf("%s: app password %+v, want %+v", what, g.AppPassword, w.pass)
		default:
			if w.acct != nil {
				checkAccount(t, what, *g.Account, *w.acct)
			}
			if w.pass != nil {
				checkAppPassword(t, what, *g.AppPassword, *w.pass)
			}
		}
	}

	t.Run("Empty", func(t *testing.T) {
		got, err := s.CheckSessions(t.Context(), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("CheckSessions(nil) = %+v, %v; want nothing", got, err)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		// As many refs as a busy instance has sessions, in one call.
		refs := make([]store.SessionRef, 5000)
		for i := range refs {
			refs[i] = store.SessionRef{Username: "alice", AppPasswordID: ps[i%2].ID}
		}
		got, err := s.CheckSessions(t.Context(), refs)
		if err != nil || len(got) != len(refs) {
			t.Fatalf("CheckSessions(%d refs): %d states, %v", len(refs), len(got), err)
		}
		for i, g := range got {
			if live := g.AppPassword != nil; live != (i%2 == 0) {
				t.Fatalf("ref %d: app password present = %v", i, live)
			}
		}
	})
}

func getAccount(t *testing.T, s store.Store, username string) store.Account {
	t.Helper()
	a, err := s.GetAccount(t.Context(), username)
	if err != nil {
		t.Fatalf("GetAccount(%q): %v", username, err)
	}
	return a
}

// testEventsLost: a subscriber that does not read while more events are
// published than any buffer holds may miss some, but never silently: it
// then receives store.EventsLost.
func testEventsLost(t *testing.T, o Opener) {
	const n = 600 // more than any backend's buffer
	s := o.New(t)
	mustCreateAccount(t, s, "alice")
	mustCreateAccount(t, s, "bob")
	want := map[string]bool{}
	for i := range n {
		p := appPass("alice", fmt.Sprintf("p%03d", i), t0)
		mustCreateAppPassword(t, s, p)
		want[p.ID] = true
	}
	ch := subscribe(t, s)
	if k, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice"}); err != nil || k != n {
		t.Fatalf("RevokeAllAppPasswords = %d, %v; want %d", k, err, n)
	}
	// Read everything, then a marker published once the channel was seen
	// empty: it is the last event, so once it is read nothing is pending.
	// Events may still be in flight when the channel looks empty (Redis
	// pub/sub), so the marker itself can be dropped; the subscriber is then
	// told (EventsLost) and a new marker is published.
	markers := map[string]bool{}
	publish := func() {
		id := fmt.Sprintf("marker%d", len(markers))
		mustCreateAppPassword(t, s, appPass("bob", id, t0))
		if err := s.RevokeAppPassword(t.Context(), "bob", id); err != nil {
			t.Fatalf("RevokeAppPassword(%s): %v", id, err)
		}
		markers[id] = true
	}
	got, lost := 0, 0
	for {
		if len(markers) == 0 && len(ch) == 0 {
			publish()
		}
		ev := nextEvent(t, ch)
		if ev.Kind == store.EventsLost {
			lost++
			if len(markers) > 0 {
				publish()
			}
			continue
		}
		if ev.Username == "bob" && markers[ev.AppPasswordID] {
			break
		}
		if ev.Username != "alice" || !want[ev.AppPasswordID] {
			t.Fatalf("unexpected event %+v", ev)
		}
		delete(want, ev.AppPasswordID)
		got++
	}
	t.Logf("%d of %d events delivered, %d EventsLost", got, n, lost)
	if len(want) > 0 && lost == 0 {
		t.Fatalf("%d events missing and no EventsLost", len(want))
	}
}
