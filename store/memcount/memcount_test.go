package memcount_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
	"github.com/passgate/passgate/store/storetest"
)

// clock is a fake clock safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func TestConformance(t *testing.T) {
	clk := newClock()
	storetest.RunCounters(t, func(*testing.T) store.Counters {
		return &memcount.Counters{Now: clk.Now}
	}, clk.Advance)
}

func TestZeroValueUsesWallClock(t *testing.T) {
	var c memcount.Counters
	if v, err := c.Incr(t.Context(), "k", 3, time.Hour); err != nil || v != 3 {
		t.Fatalf("Incr = %d, %v", v, err)
	}
	if v, err := c.Get(t.Context(), "k"); err != nil || v != 3 {
		t.Fatalf("Get = %d, %v", v, err)
	}
}

// Expired counters of keys never touched again are swept, so memory stays
// bounded by the keys of one window.
func TestSweep(t *testing.T) {
	clk := newClock()
	c := &memcount.Counters{Now: clk.Now}
	for i := range 1000 {
		if _, err := c.Incr(t.Context(), fmt.Sprint("ip:", i), 1, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 1000 {
		t.Fatalf("Len = %d, want 1000", n)
	}
	clk.Advance(2 * time.Minute)
	if _, err := c.Incr(t.Context(), "new", 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len after sweep = %d, want 1", n)
	}
}

func TestContextDone(t *testing.T) {
	var c memcount.Counters
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Incr(ctx, "k", 1, time.Hour); err == nil {
		t.Error("Incr with a done context succeeded")
	}
	if v, _ := c.Get(t.Context(), "k"); v != 0 {
		t.Errorf("counter is %d after a cancelled Incr", v)
	}
}
