package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/passgate/passgate/store"
)

// TestRegistryMaxPerUser: parallel logins of one account get exactly
// MaxPerUser sessions, the rest ErrLimit; other accounts are not affected,
// and a removed session frees its place.
func TestRegistryMaxPerUser(t *testing.T) {
	const limit, tries = 3, 20
	r := &Registry{MaxPerUser: limit}
	var ok, refused atomic.Int32
	var mu sync.Mutex
	var removes []func()
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			remove, err := r.Add(context.Background(), session(fmt.Sprint(i), "alice", "ap1"), func() {})
			switch {
			case errors.Is(err, ErrLimit):
				refused.Add(1)
			case err != nil:
				t.Errorf("Add: %v", err)
			default:
				ok.Add(1)
				mu.Lock()
				removes = append(removes, remove)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit || refused.Load() != tries-limit {
		t.Fatalf("%d sessions admitted, %d refused; want %d and %d", ok.Load(), refused.Load(), limit, tries-limit)
	}
	add(t, r, session("bob-1", "bob", "ap9"), func() {}) // another account
	removes[0]()
	add(t, r, session("alice-again", "alice", "ap1"), func() {})
	if _, err := r.Add(context.Background(), session("alice-over", "alice", "ap1"), func() {}); !errors.Is(err, ErrLimit) {
		t.Errorf("Add past the limit after a remove and an add: %v, want ErrLimit", err)
	}
}

// countEnded is a Metrics that counts ended sessions by protocol and cause.
type countEnded struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countEnded) SessionEnded(p store.Scope, by string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[string(p)+"/"+by]++
}

// TestRegistryMetricsEnded: each session a revocation event ends is
// counted once, by protocol.
func TestRegistryMetricsEnded(t *testing.T) {
	m := &countEnded{}
	r := &Registry{Metrics: m}
	add(t, r, session("a", "alice", "ap1"), func() {})
	s := session("b", "alice", "ap1")
	s.Protocol = store.ScopeSMTP
	add(t, r, s, func() {})
	add(t, r, session("c", "alice", "ap2"), func() {})
	ev := store.Event{Kind: store.EventAppPasswordRevoked, Username: "alice", AppPasswordID: "ap1"}
	r.End(ev)
	r.End(ev)
	want := map[string]int{"imap/event": 1, "smtp/event": 1}
	if fmt.Sprint(m.n) != fmt.Sprint(want) {
		t.Errorf("ended %v, want %v", m.n, want)
	}
}
