package authn

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// BenchmarkCacheHit is a warm login's cost in the Guard: the cache already
// holds the decision (one Verify ran before the timer), so each iteration
// is the limits, the cache lookup, the store re-read and the audit-free
// bookkeeping, and no argon2id.
//
//	go test -run '^$' -bench CacheHit ./authn
func BenchmarkCacheHit(b *testing.B) { benchCacheHit(b, store.Device{}) }

// BenchmarkCacheHitDevice is BenchmarkCacheHit from the password's bound
// device: the first-use binding check on every hit (a comparison, no
// store write).
//
//	go test -run '^$' -bench 'CacheHit' ./authn
func BenchmarkCacheHitDevice(b *testing.B) { benchCacheHit(b, thunderbird) }

// BenchmarkCacheHitBolt is BenchmarkCacheHit on the bbolt store that
// passgate serves with: the recheck's reads are bbolt transactions and
// JSON records.
//
//	go test -run '^$' -bench 'CacheHitBolt' -benchmem ./authn
func BenchmarkCacheHitBolt(b *testing.B) {
	benchCacheHitOn(b, openAuditBolt(b), store.Device{})
}

func benchCacheHit(b *testing.B, dev store.Device) { benchCacheHitOn(b, newMemStore(), dev) }

func benchCacheHitOn(b *testing.B, st store.Store, dev store.Device) {
	ctx := context.Background()
	v := &Verifier{Store: st}
	if err := createAccount(ctx, v, alice, "", false); err != nil {
		b.Fatal(err)
	}
	np, err := createAppPassword(ctx, v, alice, "laptop", nil, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	g := &Guard{Verifier: v, Counters: &memcount.Counters{}, Cache: &Cache{}, Logger: slog.New(slog.DiscardHandler)}
	a := attempt(alice, np.Password)
	a.Device = dev
	if d, err := g.Verify(ctx, a); err != nil || d.Result != OK {
		b.Fatalf("first Verify = %+v, %v", d, err)
	}
	if g.Cache.Len() != 1 {
		b.Fatalf("cache holds %d entries after a login, want 1", g.Cache.Len())
	}
	for b.Loop() {
		d, err := g.Verify(ctx, a)
		if err != nil || d.Result != OK {
			b.Fatalf("Verify = %+v, %v", d, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
