package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// testConcurrency creates, touches, finds and lists app passwords of one
// account from several goroutines at once; every write must survive.
func testConcurrency(t *testing.T, o Opener) {
	const workers, ops = 8, 25
	s := o.New(t)
	mustCreateAccount(t, s, "alice")

	use := func(w int) store.LastUse {
		return store.LastUse{Time: t0.Add(time.Hour), IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(w)}), Protocol: "imap"}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				p := appPass("alice", fmt.Sprintf("w%d-%02d", w, i), t0.Add(time.Duration(i*workers+w)*time.Second))
				if err := s.CreateAppPassword(t.Context(), p); err != nil {
					t.Errorf("CreateAppPassword(%q): %v", p.ID, err)
					return
				}
				if err := s.TouchAppPassword(t.Context(), "alice", p.ID, use(w)); err != nil {
					t.Errorf("TouchAppPassword(%q): %v", p.ID, err)
					return
				}
				if _, err := s.FindAppPassword(t.Context(), "alice", p.Tag); err != nil {
					t.Errorf("FindAppPassword(%q): %v", p.ID, err)
					return
				}
				list, err := s.ListAppPasswords(t.Context(), "alice")
				if err != nil {
					t.Errorf("ListAppPasswords: %v", err)
					return
				}
				if !slices.Contains(ids(list), p.ID) {
					t.Errorf("ListAppPasswords after creating %q lacks it", p.ID)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	list := mustList(t, s, "alice")
	if len(list) != workers*ops {
		t.Fatalf("%d app passwords after %d creates", len(list), workers*ops)
	}
	for n, p := range list {
		var w, i int
		if _, err := fmt.Sscanf(p.ID, "w%d-%d", &w, &i); err != nil {
			t.Fatalf("unexpected ID %q", p.ID)
		}
		if i*workers+w != n {
			t.Fatalf("list[%d] is %q: not in creation order", n, p.ID)
		}
		if p.LastUsed != use(w) {
			t.Fatalf("%q: last used %+v, want %+v", p.ID, p.LastUsed, use(w))
		}
	}
}
