package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// The attacks of issue 9 against the Guard over a real Verifier: each test
// counts argon2id evaluations (Verifier.HashEvaluations), never time.

// realGuard is a Guard over the population's Verifier with in-memory
// counters, a fake clock and a Sleep that does not wait (an attacker does
// not wait for the reply either).
func realGuard(f *fixture, l Limits) (*Guard, *fakeClock) {
	clk := &fakeClock{t: t0}
	f.v.Now = clk.Now
	return &Guard{Verifier: f.v, Counters: &memcount.Counters{Now: clk.Now}, Limits: l, Now: clk.Now,
		Sleep: clk.Sleep, Logger: slog.New(slog.DiscardHandler)}, clk
}

// from returns a with its remote address set.
func from(a Attempt, ip string) Attempt {
	a.RemoteIP = netip.MustParseAddr(ip)
	return a
}

// parallel runs n attempts at once and returns their results.
func parallel(t *testing.T, g *Guard, n int, a func(i int) Attempt) []Result {
	t.Helper()
	out := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := g.Verify(context.Background(), a(i))
			if err != nil {
				t.Errorf("attempt %d: %v", i, err)
			}
			out[i] = d.Result
		})
	}
	wg.Wait()
	return out
}

func count(rs []Result, r Result) int {
	n := 0
	for _, x := range rs {
		if x == r {
			n++
		}
	}
	return n
}

// TestGuardRepeatedWrongSecretCostsOneHash is issue 9 item 1: 40
// connections repeating one wrong password from one address. Only the
// first costs argon2id; the repeats are answered as the failure they are
// (audited, tarpitted) from the keyed memory of known failures, and are
// not counted again (a client retrying a stale password).
func TestGuardRepeatedWrongSecretCostsOneHash(t *testing.T) {
	for _, user := range []string{alice, "nobody@example.com"} { // known and unknown alike
		t.Run(user, func(t *testing.T) {
			f := population(t)
			g, clk := realGuard(f, Limits{})
			au := &memAudit{}
			g.Audit = &Auditor{Store: au}
			before := f.v.HashEvaluations()
			for round := range 5 {
				rs := parallel(t, g, 40, func(int) Attempt { return from(attempt(user, "Summer2025!"), "203.0.113.9") })
				if n := count(rs, BadSecret) + count(rs, UnknownUser); n != 40 {
					t.Fatalf("round %d: results %v, want 40 failures (a repeated secret is not a new guess)", round, rs)
				}
			}
			if n := f.v.HashEvaluations() - before; n != 1 {
				t.Errorf("200 attempts with one wrong secret ran %d argon2id evaluations, want 1", n)
			}
			if n := len(clk.takeDelays()); n != 200 {
				t.Errorf("%d of 200 failures were tarpitted", n)
			}
			if user == alice {
				if n := len(au.recs); n != 200 {
					t.Errorf("%d audit records for 200 attempts", n)
				}
			}
			// The repeats were not counted: the address is not blocked.
			if d, err := g.Verify(context.Background(), from(attempt(alice, f.pw["alice/laptop"].Password), "203.0.113.9")); err != nil || d.Result != OK {
				t.Errorf("the owner after the repeats: %v, %v", d.Result, err)
			}
		})
	}
}

// TestGuardKnownFailureFollowsThePassword: a secret remembered as wrong
// is verified again once the account's password changed to it.
func TestGuardKnownFailureFollowsThePassword(t *testing.T) {
	f := population(t)
	g, _ := realGuard(f, Limits{})
	const next = "Alice New Password 2"
	a := from(attempt(alice, next), "192.0.2.10")
	for range 2 {
		if d, err := g.Verify(context.Background(), a); err != nil || d.Result != BadSecret {
			t.Fatalf("before the change: %v, %v", d.Result, err)
		}
	}
	h, err := f.v.HashPassword(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.v.Store.UpdateAccount(context.Background(), alice, func(a *store.Account) error {
		a.PasswordHash = h
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d, err := g.Verify(context.Background(), a); err != nil || d.Result != OK {
		t.Errorf("after the change: %v, %v, want ok", d.Result, err)
	}
}

// TestGuardConcurrentSameSecretShareOneHash: 50 clients logging in at once
// with the same right app password (Outlook opens many connections) cost
// one argon2id, with or without the cache.
func TestGuardConcurrentSameSecretShareOneHash(t *testing.T) {
	for _, cache := range []*Cache{nil, {}} {
		t.Run(fmt.Sprintf("cache %v", cache != nil), func(t *testing.T) {
			// A hash that takes milliseconds, as argon2id does, so that
			// the logins overlap.
			f := newFixture(t)
			f.v.Params = timingParams
			f.account(t, alice, "", false)
			pw := f.appPassword(t, alice, "laptop").Password
			g, _ := realGuard(f, Limits{})
			g.Cache = cache
			// The first verification waits until all 50 attempts reached
			// their flight, so that they are concurrent however slowly the
			// goroutines start on a loaded machine.
			var entered atomic.Int32
			all := make(chan struct{})
			g.inFlight = func() {
				if entered.Add(1) == 50 {
					close(all)
				}
			}
			g.Verifier = &gatedVerifier{Verifier: f.v, gate: all}
			before := f.v.HashEvaluations()
			rs := parallel(t, g, 50, func(int) Attempt { return from(attempt(alice, pw), "192.0.2.10") })
			if n := count(rs, OK); n != 50 {
				t.Fatalf("results %v, want 50 ok", rs)
			}
			if n := f.v.HashEvaluations() - before; n != 1 {
				t.Errorf("50 concurrent logins ran %d argon2id evaluations, want 1", n)
			}
		})
	}
}

// gatedVerifier is a Verifier whose logins wait until gate is closed.
type gatedVerifier struct {
	*Verifier
	gate chan struct{}
}

func (g *gatedVerifier) Verify(ctx context.Context, a Attempt) (Decision, error) {
	<-g.gate
	return g.Verifier.Verify(ctx, a)
}

// slowVerifier is a fakeVerifier whose every call takes a while, so that
// parallel attempts overlap as they do against argon2id.
type slowVerifier struct{ fakeVerifier }

func (s *slowVerifier) Verify(ctx context.Context, a Attempt) (Decision, error) {
	time.Sleep(30 * time.Millisecond)
	return s.fakeVerifier.Verify(ctx, a)
}

// TestGuardParallelGuessesCostAtMostTheLimit is issue 9 item 2: 40
// different guesses sent at once must not all be verified; attempts are
// reserved in the counters before the hash.
func TestGuardParallelGuessesCostAtMostTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		user func(i int) string
		want int
	}{
		{"one account (account+address limit 5)", func(int) string { return alice }, DefaultMaxPerAccountAddress},
		{"40 accounts (address limit 10)", func(i int) string { return fmt.Sprintf("user%d@example.com", i) }, DefaultMaxPerAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &slowVerifier{fakeVerifier{ok: map[string]string{alice: ownerSecret}}}
			clk := &fakeClock{t: t0}
			g := &Guard{Verifier: v, Counters: &memcount.Counters{Now: clk.Now}, Now: clk.Now, Sleep: clk.Sleep,
				Logger: slog.New(slog.DiscardHandler)}
			rs := parallel(t, g, 40, func(i int) Attempt {
				return from(attempt(tc.user(i), fmt.Sprintf("guess-%d", i)), "203.0.113.9")
			})
			if n := v.callCount(); n > tc.want {
				t.Errorf("40 parallel guesses were verified %d times, want at most %d", n, tc.want)
			}
			if n := count(rs, RateLimited); n < 40-tc.want {
				t.Errorf("%d refused, want at least %d: %v", n, 40-tc.want, rs)
			}
		})
	}
}

// TestGuardOwnerGetsInDuringAccountBlock is issue 9 item 12: after 30
// guesses from 6 addresses the account is blocked for new addresses, yet
// the owner's right app password from a new address still gets in; the
// right primary password does not (it is guessable), and guesses during
// the block cost no argon2id.
func TestGuardOwnerGetsInDuringAccountBlock(t *testing.T) {
	f := population(t)
	g, clk := realGuard(f, Limits{})
	ctx := context.Background()
	for i := range 30 {
		ip := fmt.Sprintf("10.%d.0.1", i/5)
		if d, err := g.Verify(ctx, from(attempt(alice, fmt.Sprint("guess ", i)), ip)); err != nil || d.Result != BadSecret {
			t.Fatalf("guess %d: %v, %v", i, d.Result, err)
		}
	}
	before := f.v.HashEvaluations()
	for i := range 20 {
		ip := fmt.Sprintf("10.%d.0.1", 10+i)
		if d, _ := g.Verify(ctx, from(attempt(alice, fmt.Sprint("more ", i)), ip)); d.Result != RateLimited {
			t.Fatalf("guess during the block: %v, want %v", d.Result, RateLimited)
		}
	}
	if n := f.v.HashEvaluations() - before; n != 0 {
		t.Errorf("20 guesses during the block ran %d argon2id evaluations, want 0", n)
	}
	if d, _ := g.Verify(ctx, from(attempt(alice, "Alice Primary 1"), "198.51.100.50")); d.Result != RateLimited {
		t.Errorf("the right primary password from a new address during the block: %v, want %v", d.Result, RateLimited)
	}
	clk.advance(time.Minute)
	d, err := g.Verify(ctx, from(attempt(alice, f.pw["alice/laptop"].Password), "198.51.100.50"))
	if err != nil || d.Result != OK {
		t.Errorf("the owner's app password from a new address during the block: %v, %v, want ok", d.Result, err)
	}
}

// TestGuardSecondFactorLimits is issue 9 item 3 at the Guard: 20 wrong
// codes at once are not all checked, the account's second-factor lockout
// survives a new password step and a success, and holds for the right
// code until its window ends.
func TestGuardSecondFactorLimits(t *testing.T) {
	f := population(t)
	g, clk := realGuard(f, Limits{MaxPerAccountAddress: 100, MaxPerAddress: 100})
	au := &memAudit{}
	g.Audit = &Auditor{Store: au}
	ctx := context.Background()
	code := func(ip string) Attempt {
		a := from(attempt(bob, ""), ip)
		a.Protocol, a.Mechanism = "portal", "password+totp"
		return a
	}
	var mu sync.Mutex
	checked := 0
	wrong := func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		checked++
		return false, nil
	}
	right := func(context.Context) (bool, error) { return true, nil }

	results := make([]Result, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			r, err := g.SecondFactor(ctx, code("192.0.2.10"), wrong)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	if checked != DefaultMaxSecondFactorFailures || count(results, BadCode) != checked || count(results, RateLimited) != 20-checked {
		t.Fatalf("20 parallel wrong codes: %d checked, results %v; want %d checked", checked, results, DefaultMaxSecondFactorFailures)
	}
	// The password again (the owner's, from another address) and the
	// right code: still locked.
	if d, err := g.Verify(ctx, from(attempt(bob, "Bob Primary 22"), "198.51.100.20")); err != nil || d.Result != PrimaryRefusedMFA {
		t.Fatalf("password step: %v, %v", d.Result, err)
	}
	if r, err := g.SecondFactor(ctx, code("198.51.100.20"), right); err != nil || r != RateLimited {
		t.Errorf("the right code during the lockout: %v, %v, want %v", r, err, RateLimited)
	}
	// From a trusted network as well.
	g.Limits.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if r, _ := g.SecondFactor(ctx, code("10.1.1.1"), right); r != RateLimited {
		t.Errorf("the right code from a trusted network during the lockout: %v, want %v", r, RateLimited)
	}
	clk.advance(DefaultSecondFactorWindow)
	if r, err := g.SecondFactor(ctx, code("198.51.100.20"), right); err != nil || r != OK {
		t.Errorf("the right code after the window: %v, %v, want ok", r, err)
	}
	bad := 0
	for _, rec := range au.recs {
		if rec.Result == string(BadCode) && rec.Mechanism == "password+totp" && rec.Protocol == "portal" {
			bad++
		}
	}
	if bad != DefaultMaxSecondFactorFailures {
		t.Errorf("%d bad-code audit records, want %d", bad, DefaultMaxSecondFactorFailures)
	}
}

// TestGuardPrimaryConfirmationCounts: the answer that confirms the right
// primary password of an MFA account (IMAP's [ALERT], the portal's code
// page) is counted like a failure and resets nothing, so neither door is
// an unlimited oracle for the primary password.
func TestGuardPrimaryConfirmationCounts(t *testing.T) {
	f := population(t)
	g, _ := realGuard(f, Limits{})
	ctx := context.Background()
	const ip = "203.0.113.9"
	for i := range DefaultMaxPerAccountAddress - 1 {
		a := from(attempt(bob, fmt.Sprint("guess ", i)), ip)
		if i%2 == 1 {
			a.Protocol = "portal" // the portal's password step shares the limits
		}
		if d, _ := g.Verify(ctx, a); d.Result != BadSecret {
			t.Fatalf("guess %d: %v", i, d.Result)
		}
	}
	if d, _ := g.Verify(ctx, from(attempt(bob, "Bob Primary 22"), ip)); d.Result != PrimaryRefusedMFA {
		t.Fatalf("the right password: %v", d.Result)
	}
	if d, _ := g.Verify(ctx, from(attempt(bob, "another guess"), ip)); d.Result != RateLimited {
		t.Errorf("after 4 guesses and the confirmation: %v, want %v", d.Result, RateLimited)
	}
}

// TestGuardHashBudgets: work the failure limits do not count (here,
// successes without a cache) is bounded per address and per account.
func TestGuardHashBudgets(t *testing.T) {
	f := population(t)
	g, clk := realGuard(f, Limits{MaxHashesPerAddress: 3, MaxHashesPerAccount: 5})
	ctx := context.Background()
	pw := f.pw["alice/laptop"].Password
	login := func(ip string) Result {
		d, err := g.Verify(ctx, from(attempt(alice, pw), ip))
		if err != nil {
			t.Fatal(err)
		}
		return d.Result
	}
	before := f.v.HashEvaluations()
	for i := range 3 {
		if r := login("192.0.2.10"); r != OK {
			t.Fatalf("login %d: %v", i, r)
		}
	}
	if r := login("192.0.2.10"); r != RateLimited {
		t.Errorf("4th hash from one address: %v, want %v", r, RateLimited)
	}
	for i, want := range []Result{OK, OK, RateLimited} {
		if r := login("198.51.100.20"); r != want {
			t.Errorf("login %d from another address: %v, want %v (account budget 5)", i, r, want)
		}
	}
	if n := f.v.HashEvaluations() - before; n != 5 {
		t.Errorf("%d argon2id evaluations, want 5", n)
	}
	clk.advance(DefaultFailWindow)
	if r := login("192.0.2.10"); r != OK {
		t.Errorf("next window: %v, want ok", r)
	}
}
