package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// kvLong is a TTL no test outlives, for keys that must stay.
const kvLong = time.Hour

// kvShort is the TTL of keys that must expire when the clock is real
// (advance nil); kvWait bounds the wait for them to go.
const (
	kvShort = 1200 * time.Millisecond
	kvWait  = 15 * time.Second
)

// RunKV is the conformance suite of store.KV. newKV returns a new, empty KV
// (closed by t.Cleanup if needed). advance moves the clock of every KV
// newKV returned forward by d (a fake clock, miniredis's FastForward); nil
// when the clock is real: the expiry subtests then use TTLs of about a
// second and wait, bounded, for the keys to go, and the subtests that need
// to stop between two instants are skipped.
func RunKV(t *testing.T, newKV func(t *testing.T) store.KV, advance func(d time.Duration)) {
	t.Helper()
	if newKV == nil {
		t.Fatal("storetest: RunKV: newKV is nil")
	}
	tests := []struct {
		name string
		run  func(*testing.T, store.KV)
	}{
		{"PutGetReplace", testKVPutGet},
		{"Absent", testKVAbsent},
		{"Delete", testKVDelete},
		{"EmptyValue", testKVEmptyValue},
		{"ValuesAreCopied", testKVCopies},
		{"AddOnlyIfAbsent", testKVAdd},
		{"InvalidTTL", testKVInvalidTTL},
		{"ConcurrentAdd", testKVConcurrentAdd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newKV(t)) })
	}
	expiry := []struct {
		name string
		run  func(*testing.T, store.KV, func(time.Duration))
	}{
		{"Expiry", testKVExpiry},
		{"AddAfterExpiry", testKVAddAfterExpiry},
		{"PutResetsTTL", testKVPutResetsTTL},
		{"FailedAddKeepsTTL", testKVFailedAddKeepsTTL},
	}
	for _, tc := range expiry {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newKV(t), advance) })
	}
}

func mustPut(t *testing.T, kv store.KV, key, value string, ttl time.Duration) {
	t.Helper()
	if err := kv.PutKV(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("PutKV(%q, %v): %v", key, ttl, err)
	}
}

func mustAdd(t *testing.T, kv store.KV, key, value string, ttl time.Duration, want bool) {
	t.Helper()
	added, err := kv.AddKV(t.Context(), key, []byte(value), ttl)
	if err != nil {
		t.Fatalf("AddKV(%q, %q, %v): %v", key, value, ttl, err)
	}
	if added != want {
		t.Fatalf("AddKV(%q, %q, %v) = %v, want %v", key, value, ttl, added, want)
	}
}

// wantValue fails unless GetKV(key) returns value.
func wantValue(t *testing.T, kv store.KV, key, value string) {
	t.Helper()
	got, err := kv.GetKV(t.Context(), key)
	if err != nil {
		t.Fatalf("GetKV(%q): %v, want %q", key, err, value)
	}
	if string(got) != value {
		t.Fatalf("GetKV(%q) = %q, want %q", key, got, value)
	}
}

// wantAbsent fails unless GetKV(key) reports store.ErrNotFound.
func wantAbsent(t *testing.T, kv store.KV, key string) {
	t.Helper()
	got, err := kv.GetKV(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKV(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// waitAbsent waits, with a real clock, until key is gone (at most kvWait).
func waitAbsent(t *testing.T, kv store.KV, key string) {
	t.Helper()
	deadline := time.Now().Add(kvWait)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := kv.GetKV(t.Context(), key)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("GetKV(%q): %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetKV(%q): still present %v after its TTL of %v", key, kvWait, kvShort)
		}
		<-tick.C
	}
}

func testKVPutGet(t *testing.T, kv store.KV) {
	mustPut(t, kv, "session:a", "one", kvLong)
	mustPut(t, kv, "session:ab", "other", kvLong)
	wantValue(t, kv, "session:a", "one")
	mustPut(t, kv, "session:a", "two", kvLong)
	wantValue(t, kv, "session:a", "two")
	wantValue(t, kv, "session:ab", "other")
	binary := "\x00\xff\x00 binary"
	mustPut(t, kv, "totp:alice:123", binary, kvLong)
	wantValue(t, kv, "totp:alice:123", binary)
}

func testKVAbsent(t *testing.T, kv store.KV) {
	wantAbsent(t, kv, "nothing")
	mustPut(t, kv, "session:a", "one", kvLong)
	wantAbsent(t, kv, "session:")
	wantAbsent(t, kv, "session:ab")
}

func testKVDelete(t *testing.T, kv store.KV) {
	mustPut(t, kv, "a", "one", kvLong)
	mustPut(t, kv, "b", "two", kvLong)
	for range 2 { // the second delete is of an absent key
		if err := kv.DeleteKV(t.Context(), "a"); err != nil {
			t.Fatalf("DeleteKV(a): %v", err)
		}
		wantAbsent(t, kv, "a")
	}
	wantValue(t, kv, "b", "two")
	if err := kv.DeleteKV(t.Context(), "never"); err != nil {
		t.Fatalf("DeleteKV(never stored): %v", err)
	}
	mustAdd(t, kv, "a", "again", kvLong, true)
	wantValue(t, kv, "a", "again")
}

// testKVEmptyValue: an empty value is a value (a used TOTP step needs no
// payload), not an absent key.
func testKVEmptyValue(t *testing.T, kv store.KV) {
	mustPut(t, kv, "empty", "", kvLong)
	wantValue(t, kv, "empty", "")
	mustAdd(t, kv, "empty", "x", kvLong, false)
	mustAdd(t, kv, "nil", "", kvLong, true)
	mustAdd(t, kv, "nil", "x", kvLong, false)
	wantValue(t, kv, "nil", "")
}

// testKVCopies: changing the slices passed in or returned changes nothing
// stored.
func testKVCopies(t *testing.T, kv store.KV) {
	in := []byte("value")
	if err := kv.PutKV(t.Context(), "k", in, kvLong); err != nil {
		t.Fatalf("PutKV: %v", err)
	}
	copy(in, "XXXXX")
	got, err := kv.GetKV(t.Context(), "k")
	if err != nil || string(got) != "value" {
		t.Fatalf("GetKV after changing the put slice = %q, %v; want %q", got, err, "value")
	}
	copy(got, "YYYYY")
	wantValue(t, kv, "k", "value")
}

func testKVAdd(t *testing.T, kv store.KV) {
	mustAdd(t, kv, "k", "first", kvLong, true)
	mustAdd(t, kv, "k", "second", kvLong, false)
	wantValue(t, kv, "k", "first")
	mustPut(t, kv, "k", "put", kvLong)
	mustAdd(t, kv, "k", "third", kvLong, false)
	wantValue(t, kv, "k", "put")
	mustAdd(t, kv, "k2", "other", kvLong, true)
	wantValue(t, kv, "k2", "other")
}

// testKVInvalidTTL: a TTL must be positive; a rejected call stores nothing.
func testKVInvalidTTL(t *testing.T, kv store.KV) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := kv.PutKV(t.Context(), "k", []byte("v"), ttl); err == nil {
			t.Errorf("PutKV with ttl %v succeeded", ttl)
		}
		if added, err := kv.AddKV(t.Context(), "k", []byte("v"), ttl); err == nil || added {
			t.Errorf("AddKV with ttl %v = %v, %v; want an error", ttl, added, err)
		}
	}
	wantAbsent(t, kv, "k")
}

// testKVConcurrentAdd races 16 AddKV calls on one key, a few rounds:
// exactly one wins, and its value is the one stored.
func testKVConcurrentAdd(t *testing.T, kv store.KV) {
	const rounds, racers = 5, 16
	for r := range rounds {
		key := fmt.Sprintf("race-%d", r)
		start := make(chan struct{})
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
		)
		for i := range racers {
			wg.Go(func() {
				value := fmt.Sprintf("racer-%d", i)
				<-start
				added, err := kv.AddKV(t.Context(), key, []byte(value), kvLong)
				if err != nil {
					t.Errorf("AddKV(%q, %q): %v", key, value, err)
					return
				}
				if added {
					mu.Lock()
					winners = append(winners, value)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		if len(winners) != 1 {
			t.Fatalf("%s: %d of %d AddKV calls won (%q), want exactly 1", key, len(winners), racers, winners)
		}
		wantValue(t, kv, key, winners[0])
	}
}

func testKVExpiry(t *testing.T, kv store.KV, advance func(time.Duration)) {
	if advance == nil {
		mustPut(t, kv, "short", "v", kvShort)
		mustPut(t, kv, "long", "v", kvLong)
		waitAbsent(t, kv, "short")
		wantValue(t, kv, "long", "v")
		return
	}
	mustPut(t, kv, "short", "v", 10*time.Second)
	mustPut(t, kv, "long", "v", kvLong)
	advance(9 * time.Second)
	wantValue(t, kv, "short", "v")
	advance(2 * time.Second)
	wantAbsent(t, kv, "short")
	wantValue(t, kv, "long", "v")
	if err := kv.DeleteKV(t.Context(), "short"); err != nil {
		t.Fatalf("DeleteKV(expired): %v", err)
	}
}

func testKVAddAfterExpiry(t *testing.T, kv store.KV, advance func(time.Duration)) {
	if advance == nil {
		mustAdd(t, kv, "k", "first", kvShort, true)
		waitAbsent(t, kv, "k")
	} else {
		mustAdd(t, kv, "k", "first", 10*time.Second, true)
		advance(11 * time.Second)
	}
	mustAdd(t, kv, "k", "second", kvLong, true)
	wantValue(t, kv, "k", "second")
	mustAdd(t, kv, "k", "third", kvLong, false)
}

// testKVPutResetsTTL: PutKV replaces the TTL along with the value.
func testKVPutResetsTTL(t *testing.T, kv store.KV, advance func(time.Duration)) {
	if advance == nil {
		t.Skip("needs a clock the test can move (advance is nil)")
	}
	mustPut(t, kv, "k", "one", 10*time.Second)
	advance(8 * time.Second)
	mustPut(t, kv, "k", "two", 10*time.Second)
	advance(8 * time.Second)
	wantValue(t, kv, "k", "two")
	advance(3 * time.Second)
	wantAbsent(t, kv, "k")
}

// testKVFailedAddKeepsTTL: an AddKV that finds the key changes neither its
// value nor its TTL.
func testKVFailedAddKeepsTTL(t *testing.T, kv store.KV, advance func(time.Duration)) {
	if advance == nil {
		t.Skip("needs a clock the test can move (advance is nil)")
	}
	mustAdd(t, kv, "k", "one", 10*time.Second, true)
	advance(8 * time.Second)
	mustAdd(t, kv, "k", "two", time.Minute, false)
	wantValue(t, kv, "k", "one")
	advance(3 * time.Second)
	wantAbsent(t, kv, "k")
}
