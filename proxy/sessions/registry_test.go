package sessions

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// fixture registers alice's sessions (two app passwords, one primary) and
// bob's, and records which end functions ran.
type fixture struct {
	r     *Registry
	mu    sync.Mutex
	ended []string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{r: &Registry{}}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range []Session{
		session("a-ap1", "alice", "ap1"),
		session("a-ap1-b", "alice", "ap1"),
		session("a-ap2", "alice", "ap2"),
		session("a-primary", "alice", ""),
		session("b-ap1", "bob", "ap1"),
		session("b-primary", "bob", ""),
	} {
		s.Started = t0.Add(time.Duration(i) * time.Second)
		add(t, f.r, s, func() {
			f.mu.Lock()
			f.ended = append(f.ended, s.ID)
			f.mu.Unlock()
		})
	}
	return f
}

// session is a live IMAP session of user with app password apID ("" for
// the primary password).
func session(id, user, apID string) Session {
	return Session{ID: id, Protocol: store.ScopeIMAP, Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
		Login: authn.Decision{Result: authn.OK, Username: user, AppPasswordID: apID}}
}

// add registers s and fails the test if Add fails.
func add(t testing.TB, r *Registry, s Session, end func()) (remove func()) {
	t.Helper()
	remove, err := r.Add(context.Background(), s, end)
	if err != nil {
		t.Fatalf("Add(%s): %v", s.ID, err)
	}
	return remove
}

func (f *fixture) endedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.ended))
}

func ids(ss []Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestRegistryEnd(t *testing.T) {
	tests := []struct {
		name string
		ev   store.Event
		want []string // sessions ended, sorted
	}{
		{"app password revoked",
			store.Event{Kind: store.EventAppPasswordRevoked, Username: "alice", AppPasswordID: "ap1"},
			[]string{"a-ap1", "a-ap1-b"}},
		{"same id of another user untouched",
			store.Event{Kind: store.EventAppPasswordRevoked, Username: "bob", AppPasswordID: "ap2"},
			nil},
		{"revocation without id ends nothing",
			store.Event{Kind: store.EventAppPasswordRevoked, Username: "alice"},
			nil},
		{"primary only",
			store.Event{Kind: store.EventAccountChanged, Username: "alice", PrimaryOnly: true},
			[]string{"a-primary"}},
		{"account disabled",
			store.Event{Kind: store.EventAccountChanged, Username: "alice"},
			[]string{"a-ap1", "a-ap1-b", "a-ap2", "a-primary"}},
		{"unknown user",
			store.Event{Kind: store.EventAccountChanged, Username: "carol"},
			nil},
		{"unknown kind",
			store.Event{Kind: "something-else", Username: "alice"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := ids(f.r.Sessions())
			if n := f.r.End(tt.ev); n != len(tt.want) {
				t.Errorf("End = %d, want %d", n, len(tt.want))
			}
			if got := f.endedIDs(); !slices.Equal(got, tt.want) {
				t.Errorf("ended %v, want %v", got, tt.want)
			}
			// The ended sessions left the registry; the others stayed.
			left := ids(f.r.Sessions())
			for _, id := range before {
				if slices.Contains(tt.want, id) == slices.Contains(left, id) {
					t.Errorf("session %s: ended=%v but still listed=%v", id, slices.Contains(tt.want, id), slices.Contains(left, id))
				}
			}
			// Ending again calls nobody twice.
			if n := f.r.End(tt.ev); n != 0 {
				t.Errorf("second End = %d, want 0", n)
			}
			if got := f.endedIDs(); !slices.Equal(got, tt.want) {
				t.Errorf("after second End: ended %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegistryRemoveIdempotent(t *testing.T) {
	r := &Registry{}
	var calls atomic.Int32
	remove := add(t, r, session("s1", "alice", ""), func() { calls.Add(1) })
	add(t, r, session("s2", "alice", ""), func() {})
	remove()
	remove()
	if got := ids(r.Sessions()); !slices.Equal(got, []string{"s2"}) {
		t.Fatalf("sessions after remove = %v, want [s2]", got)
	}
	if n := r.End(store.Event{Kind: store.EventAccountChanged, Username: "alice"}); n != 1 {
		t.Errorf("End = %d, want 1 (the removed session is gone)", n)
	}
	if calls.Load() != 0 {
		t.Errorf("removed session's end was called")
	}
	remove() // after the user's index entry is gone
	if len(r.Sessions()) != 0 {
		t.Errorf("sessions = %v, want none", r.Sessions())
	}
}

func TestRegistrySessionsSnapshot(t *testing.T) {
	f := newFixture(t)
	got := f.r.Sessions()
	want := []string{"a-ap1", "a-ap1-b", "a-ap2", "a-primary", "b-ap1", "b-primary"}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Sessions = %v, want %v (oldest first)", ids(got), want)
	}
	got[0].ID = "changed"
	if f.r.Sessions()[0].ID != "a-ap1" {
		t.Errorf("Sessions returned shared memory")
	}
}

// Sessions come and go while revocations arrive; run with -race. Every
// session's end runs at most once, and every session never removed is ended
// exactly once by End or by the final account events.
func TestRegistryConcurrent(t *testing.T) {
	r := &Registry{}
	const workers, perWorker = 8, 200
	var endCalls sync.Map // session ID -> *atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("user%d", w%3)
			for i := range perWorker {
				id := fmt.Sprintf("%d-%d", w, i)
				c := new(atomic.Int32)
				endCalls.Store(id, c)
				remove := add(t, r, session(id, user, fmt.Sprintf("ap%d", i%4)), func() { c.Add(1) })
				if i%2 == 0 {
					remove()
				}
			}
		}()
	}
	for i := range perWorker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("user%d", i%3)
			switch i % 3 {
			case 0:
				r.End(store.Event{Kind: store.EventAppPasswordRevoked, Username: user, AppPasswordID: fmt.Sprintf("ap%d", i%4)})
			case 1:
				r.End(store.Event{Kind: store.EventAccountChanged, Username: user})
			default:
				r.Sessions()
			}
		}()
	}
	wg.Wait()
	for u := range 3 {
		r.End(store.Event{Kind: store.EventAccountChanged, Username: fmt.Sprintf("user%d", u)})
	}
	endCalls.Range(func(k, v any) bool {
		var w, i int
		fmt.Sscanf(k.(string), "%d-%d", &w, &i)
		n := v.(*atomic.Int32).Load()
		if kept := i%2 == 1; n > 1 || (kept && n != 1) {
			t.Errorf("session %v (kept %v) ended %d times", k, kept, n)
		}
		return true
	})
	if n := len(r.Sessions()); n != 0 {
		t.Errorf("%d sessions left after every account was disabled", n)
	}
}
