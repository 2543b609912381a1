package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// cacheFixture is a Guard with a Cache over a real Verifier (cheap
// argon2id) and the accounts of population.
type cacheFixture struct {
	*fixture
	g   *Guard
	clk *fakeClock
}

func newCacheFixture(t *testing.T) *cacheFixture {
	pf := population(t)
	clk := &fakeClock{t: t0}
	pf.v.Now = clk.Now
	g := &Guard{Verifier: pf.v, Counters: &memcount.Counters{Now: clk.Now}, Cache: &Cache{},
		Now: clk.Now, Sleep: clk.Sleep, Logger: slog.New(slog.DiscardHandler)}
	return &cacheFixture{fixture: pf, g: g, clk: clk}
}

// verify runs a through the Guard and returns the decision and the number
// of argon2id evaluations it cost.
func (f *cacheFixture) verify(t *testing.T, a Attempt) (Decision, int64) {
	t.Helper()
	before := f.v.HashEvaluations()
	d, err := f.g.Verify(context.Background(), a)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return d, f.v.HashEvaluations() - before
}

func TestCacheHitSkipsHash(t *testing.T) {
	f := newCacheFixture(t)
	pw := f.pw["alice/laptop"]
	d, n := f.verify(t, attempt(alice, pw.Password))
	if d.Result != OK || n != 1 {
		t.Fatalf("first login: %v after %d hashes, want ok after 1", d.Result, n)
	}
	for i := range 5 {
		d, n = f.verify(t, attempt(alice, pw.Password))
		if d.Result != OK || d.AppPasswordID != pw.ID || d.Username != alice || n != 0 {
			t.Fatalf("login %d: %+v after %d hashes, want ok with %s after 0", i+2, d, n, pw.ID)
		}
	}
	// After TTL the secret is verified again.
	f.clk.advance(DefaultCacheTTL)
	if d, n = f.verify(t, attempt(alice, pw.Password)); d.Result != OK || n != 1 {
		t.Errorf("after the TTL: %v after %d hashes, want ok after 1", d.Result, n)
	}
}

func TestCacheMisses(t *testing.T) {
	f := newCacheFixture(t)
	pw := f.pw["alice/laptop"].Password
	if d, _ := f.verify(t, attempt(alice, pw)); d.Result != OK {
		t.Fatal(d.Result)
	}
	smtp := attempt(alice, pw)
	smtp.Protocol = store.ScopeSMTP
	phoneIMAP := attempt(alice, f.pw["alice/phone"].Password) // smtp-only password
	for _, tc := range []struct {
		name string
		a    Attempt
		want Result
	}{
		{"other protocol", smtp, OK},
		{"wrong secret", attempt(alice, pw+"x"), BadSecret},
		{"other user, same secret", attempt(bob, pw), BadSecret},
		{"out-of-scope password", phoneIMAP, ScopeDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d, n := f.verify(t, tc.a); d.Result != tc.want || n != 1 {
				t.Errorf("%v after %d hashes, want %v after 1", d.Result, n, tc.want)
			}
		})
	}
	// A refusal is not cached as an OK, but remembered as a refusal: the
	// same answer again, without a hash.
	if d, n := f.verify(t, phoneIMAP); d.Result != ScopeDenied || n != 0 {
		t.Errorf("out-of-scope password again: %v after %d hashes, want %v after 0", d.Result, n, ScopeDenied)
	}
}

func TestCacheDroppedOnEvents(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *cacheFixture) store.Event
		want   Result // for alice/laptop afterwards
		kept   bool   // alice/office's entry survives
	}{
		{"revoked", func(t *testing.T, f *cacheFixture) store.Event {
			id := f.pw["alice/laptop"].ID
			if err := f.st.RevokeAppPassword(ctx, alice, id); err != nil {
				t.Fatal(err)
			}
			return store.Event{Kind: store.EventAppPasswordRevoked, Username: alice, AppPasswordID: id}
		}, BadSecret, true},
		{"disabled", func(t *testing.T, f *cacheFixture) store.Event {
			if err := f.st.UpdateAccount(ctx, alice, func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
				t.Fatal(err)
			}
			return store.Event{Kind: store.EventAccountChanged, Username: alice}
		}, Disabled, false},
		{"another password revoked", func(t *testing.T, f *cacheFixture) store.Event {
			return store.Event{Kind: store.EventAppPasswordRevoked, Username: alice, AppPasswordID: "other"}
		}, OK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			office := attempt(alice, f.pw["alice/office"].Password)
			office.RemoteIP = netip.MustParseAddr("192.0.2.5")
			laptop := attempt(alice, f.pw["alice/laptop"].Password)
			for _, a := range []Attempt{laptop, office} {
				if d, _ := f.verify(t, a); d.Result != OK {
					t.Fatal(d.Result)
				}
			}
			f.g.Cache.Drop(tc.change(t, f))
			d, n := f.verify(t, laptop)
			if d.Result != tc.want {
				t.Errorf("laptop after the event: %v, want %v", d.Result, tc.want)
			}
			if wantN := map[bool]int64{true: 0, false: 1}[tc.want == OK]; n != wantN {
				t.Errorf("laptop after the event cost %d hashes, want %d", n, wantN)
			}
			if _, n := f.verify(t, office); (n == 0) != tc.kept {
				t.Errorf("office after the event cost %d hashes; entry kept = %v", n, tc.kept)
			}
		})
	}
}

func TestCacheRechecksExpiryAndNetworks(t *testing.T) {
	f := newCacheFixture(t)
	ctx := context.Background()
	np, err := createAppPassword(ctx, f.v, alice, "temp", nil, t0.Add(time.Minute),
		netip.MustParsePrefix("198.51.100.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	a := attempt(alice, np.Password) // from 198.51.100.7
	if d, n := f.verify(t, a); d.Result != OK || n != 1 {
		t.Fatalf("first login: %v, %d hashes", d.Result, n)
	}
	if d, n := f.verify(t, a); d.Result != OK || n != 0 {
		t.Fatalf("cached login: %v, %d hashes", d.Result, n)
	}
	outside := a
	outside.RemoteIP = netip.MustParseAddr("203.0.113.1")
	if d, _ := f.verify(t, outside); d.Result != AddressDenied {
		t.Errorf("cached secret from outside its networks: %v, want %v", d.Result, AddressDenied)
	}
	f.clk.advance(2 * time.Minute) // past Expires, within the cache TTL
	if d, n := f.verify(t, a); d.Result != Expired || n != 1 {
		t.Errorf("cached secret after its expiry: %v after %d hashes, want %v after 1", d.Result, n, Expired)
	}
}

func TestCacheGenerationRace(t *testing.T) {
	var c Cache
	a := attempt(alice, "s")
	d := Decision{Result: OK, Username: alice, AppPasswordID: "ap-1"}
	gen := c.generation()
	// A revocation lands while the verification that said OK runs.
	c.Drop(store.Event{Kind: store.EventAppPasswordRevoked, Username: alice, AppPasswordID: "ap-1"})
	c.put(gen, alice, a, d, t0)
	if _, ok := c.lookup(alice, a, t0); ok {
		t.Error("a decision made before a revocation was cached after it")
	}
	c.put(c.generation(), alice, a, d, t0)
	if _, ok := c.lookup(alice, a, t0); !ok {
		t.Error("a fresh decision was not cached")
	}
	c.Clear()
	if _, ok := c.lookup(alice, a, t0); ok || c.Len() != 0 {
		t.Error("Clear left entries")
	}
}

func TestCacheBounded(t *testing.T) {
	c := Cache{MaxEntries: 3}
	put := func(user, secret string) {
		c.put(c.generation(), user, attempt(user, secret), Decision{Result: OK, Username: user}, t0)
	}
	for i := range 5 {
		put(fmt.Sprintf("u%d@example.org", i), "s")
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
	for i, want := range []bool{false, false, true, true, true} {
		u := fmt.Sprintf("u%d@example.org", i)
		if _, ok := c.lookup(u, attempt(u, "s"), t0); ok != want {
			t.Errorf("%s cached = %v, want %v (oldest evicted first)", u, ok, want)
		}
	}
	c = Cache{}
	for i := range 2 * cachePerUser {
		put(alice, fmt.Sprintf("secret %d", i))
	}
	if n := len(c.byUser[alice]); n != cachePerUser {
		t.Errorf("one user holds %d entries, want at most %d", n, cachePerUser)
	}
	// Failures are never cached.
	c.put(c.generation(), bob, attempt(bob, "x"), Decision{Result: BadSecret, Username: bob}, t0)
	if _, ok := c.lookup(bob, attempt(bob, "x"), t0); ok {
		t.Error("a failure was cached")
	}
}

// BenchmarkGuardVerify is the cost of a successful app-password login
// through the Guard with DefaultParams, without and with the cache (the
// same secret logging in again, as reconnecting clients do).
func BenchmarkGuardVerify(b *testing.B) {
	ctx := context.Background()
	for _, withCache := range []bool{false, true} {
		name := "no-cache"
		if withCache {
			name = "cache"
		}
		b.Run(name, func(b *testing.B) {
			v := &Verifier{Store: newMemStore()}
			if err := createAccount(ctx, v, alice, "", false); err != nil {
				b.Fatal(err)
			}
			np, err := createAppPassword(ctx, v, alice, "laptop", nil, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			g := &Guard{Verifier: v, Counters: &memcount.Counters{}, Logger: slog.New(slog.DiscardHandler)}
			if withCache {
				g.Cache = &Cache{}
			}
			a := attempt(alice, np.Password)
			for b.Loop() {
				d, err := g.Verify(ctx, a)
				if err != nil || d.Result != OK {
					b.Fatalf("Verify = %+v, %v", d, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
