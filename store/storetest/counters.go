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
	t.Run("IncrMany", func(t *testing.T) { testCountersIncrMany(t, newCounters(t)) })
	t.Run("IncrManyGiveBack", func(t *testing.T) { testCountersGiveBack(t, newCounters(t)) })
	t.Run("IncrManyReset", func(t *testing.T) {
		if advance == nil {
			t.Skip("the backend's clock cannot be moved")
		}
		testCountersReset(t, newCounters(t), advance)
	})
	t.Run("IncrManyConcurrent", func(t *testing.T) { testCountersReserve(t, newCounters(t)) })
}

// incrMany runs IncrMany and fails unless the values are want.
func incrMany(t *testing.T, c store.Counters, incrs []store.Incr, want ...int64) {
	t.Helper()
	got, err := c.IncrMany(t.Context(), incrs)
	if err != nil {
		t.Fatalf("IncrMany(%+v): %v", incrs, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("IncrMany(%+v) = %v, want %v", incrs, got, want)
	}
}

// testCountersIncrMany checks that IncrMany increments, reads and agrees
// with Incr and Get, in order, and that a read does not create a counter.
func testCountersIncrMany(t *testing.T, c store.Counters) {
	const ttl = time.Hour
	mustIncr(t, c, "b", 4, ttl, 4)
	incrMany(t, c, []store.Incr{
		{Key: "a", N: 1, TTL: ttl}, {Key: "b", N: 2, TTL: ttl}, {Key: "absent"}, {Key: "a", N: 1, TTL: ttl}, {Key: "b"},
	}, 1, 6, 0, 2, 6)
	wantCount(t, c, "a", 2)
	wantCount(t, c, "b", 6)
	wantCount(t, c, "absent", 0)
	mustIncr(t, c, "absent", 1, ttl, 1) // the read created nothing
	incrMany(t, c, nil)
	if _, err := c.IncrMany(t.Context(), []store.Incr{{Key: "x", N: 1}}); err == nil {
		t.Error("IncrMany of a positive N without a TTL succeeded")
	}
}

// testCountersGiveBack checks that a negative N never creates a counter
// nor takes one below zero.
func testCountersGiveBack(t *testing.T, c store.Counters) {
	const ttl = time.Hour
	incrMany(t, c, []store.Incr{{Key: "gone", N: -1}}, 0)
	mustIncr(t, c, "gone", 1, ttl, 1) // nothing was created: a fresh counter
	incrMany(t, c, []store.Incr{{Key: "k", N: 3, TTL: ttl}, {Key: "k", N: -1}, {Key: "k", N: -5}}, 3, 2, 0)
	wantCount(t, c, "k", 0)
	incrMany(t, c, []store.Incr{{Key: "k", N: 1, TTL: ttl}}, 1)
}

// testCountersReset checks Reset: a deletion with N 0, a new window with a
// positive N.
func testCountersReset(t *testing.T, c store.Counters, advance func(time.Duration)) {
	const ttl = 10 * time.Second
	incrMany(t, c, []store.Incr{{Key: "k", N: 5, TTL: ttl}, {Key: "d", N: 2, TTL: ttl}}, 5, 2)
	advance(6 * time.Second)
	incrMany(t, c, []store.Incr{{Key: "k", N: 1, TTL: ttl, Reset: true}, {Key: "d", Reset: true}}, 1, 0)
	wantCount(t, c, "d", 0)
	advance(6 * time.Second) // 12s: past the first window, inside the new one
	wantCount(t, c, "k", 1)
	advance(5 * time.Second)
	wantCount(t, c, "k", 0)
	// A give-back keeps the window.
	incrMany(t, c, []store.Incr{{Key: "w", N: 3, TTL: ttl}}, 3)
	advance(6 * time.Second)
	incrMany(t, c, []store.Incr{{Key: "w", N: -1}}, 2)
	advance(5 * time.Second)
	wantCount(t, c, "w", 0)
}

// testCountersReserve is the use that matters: 40 logins at once reserve
// an attempt on the same two counters; each counter hands out every value
// 1..40 once, so that exactly as many as a limit allows see a value within
// it, whatever the interleaving.
func testCountersReserve(t *testing.T, c store.Counters) {
	const workers = 40
	got := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			v, err := c.IncrMany(t.Context(), []store.Incr{
				{Key: "fail:ip:192.0.2.7/32", N: 1, TTL: time.Hour},
				{Key: "fail:acctip:alice|192.0.2.7/32", N: 1, TTL: time.Hour},
			})
			if err != nil {
				t.Errorf("IncrMany: %v", err)
				return
			}
			got[w] = v
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for k := range 2 {
		var vals []int64
		for _, v := range got {
			vals = append(vals, v[k])
		}
		slices.Sort(vals)
		for i, v := range vals {
			if v != int64(i+1) {
				t.Fatalf("counter %d: reservations returned %s, want each of 1..%d once", k, summary(vals), workers)
			}
		}
	}
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
