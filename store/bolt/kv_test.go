package bolt_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/storetest"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestKVConformance(t *testing.T) {
	clock := newFakeClock()
	storetest.RunKV(t, func(t *testing.T) store.KV {
		return open(t, filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Now: clock.Now})
	}, clock.Advance)
}

// The same suite on the real clock: expiry waits about a second.
func TestKVConformanceRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for keys to expire on the real clock")
	}
	storetest.RunKV(t, func(t *testing.T) store.KV { return newDB(t) }, nil)
}

func kvKeys(t *testing.T, db *bolt.DB) []string {
	t.Helper()
	var keys []string
	rawView(t, db, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("kv")).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys
}

// Values survive a restart; Open removes the keys that expired meanwhile,
// and GetKV removes an expired key it finds.
func TestKVExpiredKeysRemoved(t *testing.T) {
	clock := newFakeClock()
	opts := bolt.Options{Now: clock.Now}
	path := filepath.Join(t.TempDir(), "passgate.db")
	db := open(t, path, opts)
	ctx := t.Context()
	for key, ttl := range map[string]time.Duration{"a-old": time.Minute, "b-new": time.Hour, "c-old": time.Minute} {
		if err := db.PutKV(ctx, key, []byte(key), ttl); err != nil {
			t.Fatalf("PutKV(%q): %v", key, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db = open(t, path, opts)
	if got, err := db.GetKV(ctx, "a-old"); err != nil || string(got) != "a-old" {
		t.Fatalf("GetKV(a-old) after reopen = %q, %v", got, err)
	}
	if keys := kvKeys(t, db); len(keys) != 3 {
		t.Fatalf("keys %q after reopen before expiry, want all 3", keys)
	}

	clock.Advance(2 * time.Minute)
	db = open(t, path, opts)
	if keys := kvKeys(t, db); len(keys) != 1 || keys[0] != "b-new" {
		t.Fatalf("keys %q after reopen past expiry, want only b-new", keys)
	}

	db = open(t, path, opts)
	if err := db.PutKV(ctx, "d", []byte("d"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := db.GetKV(ctx, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKV(expired) = %v, want ErrNotFound", err)
	}
	if keys := kvKeys(t, db); len(keys) != 1 || keys[0] != "b-new" {
		t.Fatalf("keys %q after GetKV of an expired key, want only b-new", keys)
	}
}

// Invalid arguments are errors of the caller, not ErrUnavailable, and no
// error names the key (keys may hold session IDs).
func TestKVArguments(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	const secret = "session:s3cr3t-token"
	long := strings.Repeat("k", bbolt.MaxKeySize+1)
	calls := map[string]error{
		"PutKV(empty key)":    db.PutKV(ctx, "", []byte("v"), time.Minute),
		"PutKV(long key)":     db.PutKV(ctx, long, []byte("v"), time.Minute),
		"PutKV(zero ttl)":     db.PutKV(ctx, secret, []byte("v"), 0),
		"DeleteKV(empty key)": db.DeleteKV(ctx, ""),
	}
	_, calls["AddKV(empty key)"] = db.AddKV(ctx, "", []byte("v"), time.Minute)
	_, calls["AddKV(negative ttl)"] = db.AddKV(ctx, secret, []byte("v"), -time.Minute)
	_, calls["GetKV(empty key)"] = db.GetKV(ctx, "")
	for what, err := range calls {
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want an invalid-argument error", what, err)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "kkkk")) {
			t.Errorf("%s: error %q names the key", what, err)
		}
	}
	_, err := db.GetKV(ctx, secret)
	if !errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("GetKV(absent) = %v, want ErrNotFound without the key", err)
	}
}

// A TTL beyond what unix nanoseconds can hold means "never", not "already".
func TestKVHugeTTL(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	if err := db.PutKV(ctx, "k", []byte("v"), math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetKV(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("GetKV = %q, %v; want v", got, err)
	}
}
