package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// RunCounters is the conformance suite of store.Counters. newCounters
// returns new, empty counters (closed by t.Cleanup if needed). advance
// moves the counters' clock forward by d (a fake clock, miniredis's
// FastForward); nil when time cannot be moved, which skips the subtests
// about expiry.
func RunCounters(t *testing.T, newCounters func(t *testing.T) store.Counters, advance func(d time.Duration)) {
	t.Helper()
	t.Run("IncrGetDelete", func(t *testing.T) { testCountersBasic(t, newCounters(t)) })
	t.Run("Keys", func(t *testing.T) { testCounterKeys(t, newCounters(t)) })
	t.Run("InvalidTTL", func(t *testing.T) {
		c := newCounters(t)
		for _, ttl := range []time.Duration{0, -time.Second} {
			if _, err := c.Incr(t.Context(), "k", 1, ttl); err == nil {
				t.Errorf("Incr with ttl %v succeeded", ttl)
			}
		}
		wantCount(t, c, "k", 0)
	})
	t.Run("FixedWindow", func(t *testing.T) {
		if advance == nil {
			t.Skip("the backend's clock cannot be moved")
		}
		testCounterWindow(t, newCounters(t), advance)
	})
	t.Run("Concurrent", func(t *testing.T) { testCountersConcurrent(t, newCounters(t)) })
	t.Run("GetMany", func(t *testing.T) { testCountersGetMany(t, newCounters(t)) })
}

// testCountersGetMany checks that GetMany agrees with Get, in order,
// absent counters included.
func testCountersGetMany(t *testing.T, c store.Counters) {
	ctx := t.Context()
	for key, n := range map[string]int64{"fail:ip:192.0.2.7/32": 3, "fail:acct:alice@example.org": 7} {
		if _, err := c.Incr(ctx, key, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"fail:acct:alice@example.org", "absent", "fail:ip:192.0.2.7/32"}
	got, err := c.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 7 || got[1] != 0 || got[2] != 3 {
		t.Fatalf("GetMany(%q) = %v, want [7 0 3]", keys, got)
	}
	if got, err := c.GetMany(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", got, err)
	}
}

// wantCount fails unless Get(key) is want.
func wantCount(t *testing.T, c store.Counters, key string, want int64) {
	t.Helper()
	got, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("Get(%q) = %d, want %d", key, got, want)
	}
}

// mustIncr increments key and fails unless the new value is want.
func mustIncr(t *testing.T, c store.Counters, key string, n int64, ttl time.Duration, want int64) {
	t.Helper()
	got, err := c.Incr(t.Context(), key, n, ttl)
	if err != nil {
		t.Fatalf("Incr(%q, %d): %v", key, n, err)
	}
	if got != want {
		t.Fatalf("Incr(%q, %d) = %d, want %d", key, n, got, want)
	}
}

func testCountersBasic(t *testing.T, c store.Counters) {
	const ttl = time.Hour
	wantCount(t, c, "fail:alice", 0)
	mustIncr(t, c, "fail:alice", 1, ttl, 1)
	mustIncr(t, c, "fail:alice", 4, ttl, 5)
	mustIncr(t, c, "fail:alice", -2, ttl, 3)
	wantCount(t, c, "fail:alice", 3)
	wantCount(t, c, "fail:bob", 0)

	if err := c.Delete(t.Context(), "fail:alice"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantCount(t, c, "fail:alice", 0)
	if err := c.Delete(t.Context(), "fail:alice"); err != nil {
		t.Fatalf("Delete(missing counter): %v", err)
	}
	mustIncr(t, c, "fail:alice", 2, ttl, 2)
}

// testCounterKeys checks that keys which look alike, or hold characters a
// backend might treat specially, are separate counters.
func testCounterKeys(t *testing.T, c store.Counters) {
	keys := []string{
		"a", "a}", "{a}", "a{", "}a{", "ip:192.0.2.1", "ip:192.0.2.10", "ip:2001:db8::1",
		"user:alice@example.org", "user:ALICE@example.org", "with space", "ü*?[x]", "",
	}
	for i, k := range keys {
		mustIncr(t, c, k, int64(i+1), time.Hour, int64(i+1))
	}
	for i, k := range keys {
		wantCount(t, c, k, int64(i+1))
	}
	if err := c.Delete(t.Context(), "a}"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantCount(t, c, "a}", 0)
	wantCount(t, c, "a", 1)
	wantCount(t, c, "{a}", 3)
}

// testCounterWindow checks expiry and that increments do not extend the
// window.
func testCounterWindow(t *testing.T, c store.Counters, advance func(time.Duration)) {
	const ttl = 10 * time.Second
	mustIncr(t, c, "k", 1, ttl, 1)
	mustIncr(t, c, "other", 1, 3*ttl, 1)
	advance(6 * time.Second)
	mustIncr(t, c, "k", 1, ttl, 2) // t=6s: same window
	advance(3 * time.Second)
	wantCount(t, c, "k", 2) // t=9s
	advance(2 * time.Second)
	wantCount(t, c, "k", 0)        // t=11s: the window of t=0 is over
	mustIncr(t, c, "k", 1, ttl, 1) // a new window, from t=11s
	advance(9 * time.Second)
	wantCount(t, c, "k", 1) // t=20s
	advance(2 * time.Second)
	wantCount(t, c, "k", 0)     // t=22s
	wantCount(t, c, "other", 1) // expires at t=30s
	advance(9 * time.Second)
	wantCount(t, c, "other", 0)
}

// testCountersConcurrent increments one counter from several goroutines:
// the final value is exact and every increment saw a different value.
func testCountersConcurrent(t *testing.T, c store.Counters) {
	const workers, ops = 8, 50
	seen := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range ops {
				v, err := c.Incr(t.Context(), "shared", 1, time.Hour)
				if err != nil {
					t.Errorf("Incr: %v", err)
					return
				}
				seen[w] = append(seen[w], v)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	wantCount(t, c, "shared", workers*ops)
	all := slices.Concat(seen...)
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+1) {
			t.Fatalf("increments returned %s, want each of 1..%d once", summary(all), workers*ops)
		}
	}
}

// summary shortens a long list of values for an error message.
func summary(vs []int64) string {
	if len(vs) <= 10 {
		return fmt.Sprint(vs)
	}
	return fmt.Sprintf("%v ... %v", vs[:5], vs[len(vs)-5:])
}
