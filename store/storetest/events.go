package storetest

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// eventWait is how long a test waits for an event that must come.
const eventWait = 5 * time.Second

// subscribe subscribes to s until the test ends.
func subscribe(t *testing.T, s store.Store) <-chan store.Event {
	t.Helper()
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

// nextEvent returns the next event on ch or fails after eventWait.
func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v", eventWait)
	}
	panic("unreachable")
}

// wantEvent fails unless the next event on ch is want.
func wantEvent(t *testing.T, ch <-chan store.Event, want store.Event) {
	t.Helper()
	if got := nextEvent(t, ch); got != want {
		t.Fatalf("event %+v, want %+v", got, want)
	}
}

// marker revokes a fresh app password of username and expects its event
// next on every ch: proof that nothing was published before it.
func marker(t *testing.T, s store.Store, username string, chs ...<-chan store.Event) {
	t.Helper()
	p := appPass(username, "marker", t0)
	p.Tag = tagFor(username, "marker tag")
	mustCreateAppPassword(t, s, p)
	if err := s.RevokeAppPassword(t.Context(), username, p.ID); err != nil {
		t.Fatalf("RevokeAppPassword(marker): %v", err)
	}
	for _, ch := range chs {
		wantEvent(t, ch, revoked(username, p.ID))
	}
}

func revoked(username, id string) store.Event {
	return store.Event{Kind: store.EventAppPasswordRevoked, Username: username, AppPasswordID: id}
}

func testEvents(t *testing.T, o Opener) {
	t.Run("Revoke", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		ps := mustCreateAppPasswords(t, s, "alice", 2)
		ch1, ch2 := subscribe(t, s), subscribe(t, s)
		if err := s.RevokeAppPassword(t.Context(), "alice", ps[1].ID); err != nil {
			t.Fatalf("RevokeAppPassword: %v", err)
		}
		wantEvent(t, ch1, revoked("alice", ps[1].ID))
		wantEvent(t, ch2, revoked("alice", ps[1].ID))
		// A failed revoke publishes nothing.
		if err := s.RevokeAppPassword(t.Context(), "alice", ps[1].ID); err == nil {
			t.Fatal("second revoke succeeded")
		}
		marker(t, s, "alice", ch1, ch2)
	})

	t.Run("RevokeAll", func(t *testing.T) {
		s := o.New(t)
		var want []store.Event
		for i, u := range []string{"alice", "bob", "carol"} {
			mustCreateAccount(t, s, u)
			for _, p := range mustCreateAppPasswords(t, s, u, 3-i) {
				if u != "carol" {
					want = append(want, revoked(u, p.ID))
				}
			}
		}
		ch := subscribe(t, s)
		// Fails whole: no events.
		if _, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice", "nobody"}); err == nil {
			t.Fatal("RevokeAllAppPasswords with an unknown user succeeded")
		}
		marker(t, s, "carol", ch)

		n, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice", "bob"})
		if err != nil || n != len(want) {
			t.Fatalf("RevokeAllAppPasswords = %d, %v; want %d, nil", n, err, len(want))
		}
		var got []store.Event
		for range want {
			got = append(got, nextEvent(t, ch))
		}
		byID := func(a, b store.Event) int {
			return cmp.Or(cmp.Compare(a.Username, b.Username), cmp.Compare(a.AppPasswordID, b.AppPasswordID))
		}
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		if !slices.Equal(got, want) {
			t.Fatalf("events %+v, want %+v (in any order)", got, want)
		}
		marker(t, s, "carol", ch)
	})

	t.Run("AccountChanged", func(t *testing.T) {
		changed := func(primaryOnly bool) *store.Event {
			return &store.Event{Kind: store.EventAccountChanged, Username: "alice", PrimaryOnly: primaryOnly}
		}
		cases := []struct {
			name string
			fn   func(*store.Account) error
			want *store.Event // nil: no event
			fail bool         // fn fails
		}{
			{"Disabled", func(a *store.Account) error { a.Disabled = true; return nil }, changed(false), false},
			{"MFAOn", func(a *store.Account) error { a.MFA = true; return nil }, changed(true), false},
			{"PasswordChanged", func(a *store.Account) error { a.PasswordHash += "x"; return nil }, changed(true), false},
			{"PasswordRemoved", func(a *store.Account) error { a.PasswordHash = ""; return nil }, changed(true), false},
			{"OtherField", func(a *store.Account) error { a.Created = a.Created.Add(time.Hour); return nil }, nil, false},
			{"NoChange", func(*store.Account) error { return nil }, nil, false},
			{"Aborted", func(a *store.Account) error { a.Disabled = true; return errBoom }, nil, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := o.New(t)
				mustCreateAccount(t, s, "alice")
				ch := subscribe(t, s)
				err := s.UpdateAccount(t.Context(), "alice", tc.fn)
				if (err != nil) != tc.fail {
					t.Fatalf("UpdateAccount: %v", err)
				}
				if tc.want != nil {
					wantEvent(t, ch, *tc.want)
				}
				marker(t, s, "alice", ch)
			})
		}
	})

	t.Run("OnlyAfterSubscribe", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		ps := mustCreateAppPasswords(t, s, "alice", 1)
		if err := s.RevokeAppPassword(t.Context(), "alice", ps[0].ID); err != nil {
			t.Fatalf("RevokeAppPassword: %v", err)
		}
		ch := subscribe(t, s)
		marker(t, s, "alice", ch)
	})

	t.Run("ClosedWhenContextDone", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		other := subscribe(t, s)
		cancel()
		timer := time.NewTimer(eventWait)
		defer timer.Stop()
		for open := true; open; {
			select {
			case _, open = <-ch:
			case <-timer.C:
				t.Fatalf("channel still open %v after cancel", eventWait)
			}
		}
		// The store keeps working for the other subscriber.
		marker(t, s, "alice", other)
	})
}
