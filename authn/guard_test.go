package authn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// fakeClock is a clock that only advance (and Sleep, if sleepMoves) moves;
// Sleep records every delay. By default sleeping does not move the clock:
// attackers run in parallel, so their delays do not add up.
type fakeClock struct {
	mu         sync.Mutex
	t          time.Time
	delays     []time.Duration
	sleepMoves bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sleepMoves {
		c.t = c.t.Add(d)
	}
	c.delays = append(c.delays, d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// takeDelays returns the delays slept since the last call.
func (c *fakeClock) takeDelays() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.delays
	c.delays = nil
	return d
}

// fakeVerifier answers OK for the secrets in ok (by normalised username)
// and BadSecret otherwise, and counts its calls: each stands for one
// argon2id evaluation.
type fakeVerifier struct {
	mu    sync.Mutex
	ok    map[string]string // username -> secret
	calls int
	err   error
}

func (f *fakeVerifier) Verify(_ context.Context, a Attempt) (Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return Decision{}, f.err
	}
	user, err := store.NormalizeUsername(a.Username)
	if err != nil {
		return Decision{Result: BadSecret}, nil
	}
	if s, ok := f.ok[user]; ok && s == a.Secret {
		return Decision{Result: OK, Username: user, AppPasswordID: "ap-1", AppPasswordName: "phone"}, nil
	}
	return Decision{Result: BadSecret, Username: user}, nil
}

func (f *fakeVerifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// guardFixture is a Guard over a fakeVerifier, in-memory counters and a
// fake clock.
type guardFixture struct {
	g   *Guard
	v   *fakeVerifier
	clk *fakeClock
	cnt *memcount.Counters
	n   int // guesses so far, to make each secret unique
}

const ownerSecret = "owner-secret-1"

func newGuardFixture(t *testing.T, l Limits) *guardFixture {
	t.Helper()
	clk := &fakeClock{t: t0}
	f := &guardFixture{
		v:   &fakeVerifier{ok: map[string]string{alice: ownerSecret}},
		clk: clk,
		cnt: &memcount.Counters{Now: clk.Now},
	}
	f.g = &Guard{Verifier: f.v, Counters: f.cnt, Limits: l, Now: clk.Now, Sleep: clk.Sleep,
		Logger: slog.New(slog.DiscardHandler)}
	return f
}

// try runs one attempt and returns its result.
func (f *guardFixture) try(t *testing.T, user, secret, ip string) Result {
	t.Helper()
	a := attempt(user, secret)
	a.RemoteIP = netip.MustParseAddr(ip)
	d, err := f.g.Verify(context.Background(), a)
	if err != nil {
		t.Fatalf("Verify(%s from %s): %v", user, ip, err)
	}
	return d.Result
}

// fail runs n failing attempts (distinct secrets) against user from ip
// and checks that none was refused.
func (f *guardFixture) fail(t *testing.T, n int, user, ip string) {
	t.Helper()
	for i := range n {
		f.n++
		if r := f.try(t, user, fmt.Sprintf("guess-%d", f.n), ip); r != BadSecret {
			t.Fatalf("failure %d of %s from %s: %v, want %v", i+1, user, ip, r, BadSecret)
		}
	}
}

func TestGuardTarpitDoublesAndCaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		want   []time.Duration
	}{
		{"defaults (Dovecot: 2s doubling, 15s cap)", Limits{},
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}},
		{"base 250ms, cap 1s", Limits{TarpitBase: 250 * time.Millisecond, TarpitMax: time.Second},
			[]time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t, tc.limits)
			for i := range tc.want {
				// Distinct accounts: only the address's count escalates.
				f.fail(t, 1, fmt.Sprintf("user%d@example.org", i), "203.0.113.7")
			}
			if got := f.clk.takeDelays(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("delays %v, want %v", got, tc.want)
			}
			// Another address starts from the base delay again.
			f.fail(t, 1, "other@example.org", "198.51.100.1")
			if got := f.clk.takeDelays(); len(got) != 1 || got[0] != tc.want[0] {
				t.Errorf("first failure of another address waited %v, want %v", got, tc.want[0])
			}
			// A success is not delayed.
			if r := f.try(t, alice, ownerSecret, "203.0.113.7"); r != OK {
				t.Fatalf("owner: %v", r)
			}
			if got := f.clk.takeDelays(); len(got) != 0 {
				t.Errorf("a success waited %v", got)
			}
		})
	}
}

func TestGuardBlocksPerSourceClass(t *testing.T) {
	addrs := func(n int, format string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf(format, i+1))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		from    []string // each fails failsEach times, against distinct accounts
		each    int
		blocked []string // refused afterwards
		free    []string // still verified afterwards
	}{
		{"IPv4 /32: 10 failures", []string{"203.0.113.7"}, 10,
			[]string{"203.0.113.7", "::ffff:203.0.113.7"}, []string{"203.0.113.8"}},
		{"IPv4 /24: 100 failures from 25 addresses", addrs(25, "203.0.113.%d"), 4,
			[]string{"203.0.113.200"}, []string{"203.0.114.1"}},
		{"IPv6 /64: 10 failures from 10 addresses", addrs(10, "2001:db8:1:2::%x"), 1,
			[]string{"2001:db8:1:2:ffff::1"}, []string{"2001:db8:1:3::1"}},
		{"IPv6 /48: 100 failures from 25 /64s", addrs(25, "2001:db8:1:%x::1"), 4,
			[]string{"2001:db8:1:ffff::1"}, []string{"2001:db8:2::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t, Limits{})
			n := 0
			for _, ip := range tc.from {
				for range tc.each {
					n++
					f.fail(t, 1, fmt.Sprintf("user%d@example.org", n), ip)
				}
			}
			calls := f.v.callCount()
			for _, ip := range tc.blocked {
				// Even the right secret is refused, unverified, after the
				// maximum delay.
				if r := f.try(t, alice, ownerSecret, ip); r != RateLimited {
					t.Errorf("from %s: %v, want %v", ip, r, RateLimited)
				}
			}
			if got := f.v.callCount() - calls; got != 0 {
				t.Errorf("refused attempts ran the verifier %d times", got)
			}
			f.clk.takeDelays()
			for _, ip := range tc.free {
				if r := f.try(t, alice, ownerSecret, ip); r != OK {
					t.Errorf("from %s: %v, want ok", ip, r)
				}
			}
		})
	}
}

func TestGuardRefusedAttemptWaitsTarpitMax(t *testing.T) {
	f := newGuardFixture(t, Limits{MaxPerAddress: 2, TarpitMax: 5 * time.Second})
	f.fail(t, 2, "x@example.org", "203.0.113.7")
	f.clk.takeDelays()
	if r := f.try(t, "y@example.org", "z", "203.0.113.7"); r != RateLimited {
		t.Fatalf("third attempt: %v", r)
	}
	if got := f.clk.takeDelays(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("refused attempt waited %v, want [5s]", got)
	}
	// The block ends with the window.
	f.clk.advance(DefaultFailWindow)
	if r := f.try(t, alice, ownerSecret, "203.0.113.7"); r != OK {
		t.Errorf("after the window: %v, want ok", r)
	}
}

func TestGuardSprayingFromOneNetwork(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	// One common password against 300 accounts, rotating over the /24 so
	// that no address reaches its own limit of 10.
	const spray = "Summer2025!"
	refused := 0
	for i := range 300 {
		ip := fmt.Sprintf("198.51.100.%d", i%50+1)
		switch r := f.try(t, fmt.Sprintf("user%d@example.org", i), spray, ip); r {
		case RateLimited:
			refused++
		case BadSecret:
		default:
			t.Fatalf("attempt %d: %v", i, r)
		}
	}
	if got := f.v.callCount(); got != DefaultMaxPerNetwork {
		t.Errorf("verified %d spray attempts, want %d (the /24 limit)", got, DefaultMaxPerNetwork)
	}
	if refused != 300-DefaultMaxPerNetwork {
		t.Errorf("refused %d, want %d", refused, 300-DefaultMaxPerNetwork)
	}
}

func TestGuardRepeatedSecretDoesNotEscalate(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	// A phone with a stale password retries every few seconds.
	for i := range 50 {
		if r := f.try(t, alice, "old password", "192.0.2.10"); r != BadSecret {
			t.Fatalf("retry %d: %v, want %v", i+1, r, BadSecret)
		}
	}
	for i, d := range f.clk.takeDelays() {
		if d != DefaultTarpitBase {
			t.Fatalf("retry %d waited %v, want %v (no escalation)", i+1, d, DefaultTarpitBase)
		}
	}
	if n, _ := f.cnt.Get(context.Background(), "fail:ip:192.0.2.10/32"); n != 1 {
		t.Errorf("address failure count %d, want 1", n)
	}
	// The same stale password for another account does count.
	if r := f.try(t, bob, "old password", "192.0.2.10"); r != BadSecret {
		t.Fatal(r)
	}
	if n, _ := f.cnt.Get(context.Background(), "fail:ip:192.0.2.10/32"); n != 2 {
		t.Errorf("address failure count %d, want 2", n)
	}
	// The user fixes the password: it works at once.
	if r := f.try(t, alice, ownerSecret, "192.0.2.10"); r != OK {
		t.Errorf("fixed password: %v, want ok", r)
	}
}

func TestGuardOwnerKeepsWorkingDuringAttack(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	const owner = "192.0.2.10"
	if r := f.try(t, alice, ownerSecret, owner); r != OK {
		t.Fatalf("owner's first login: %v", r)
	}
	f.clk.advance(time.Hour)
	// 40 attackers in distinct networks, 2 guesses each: no address or
	// network limit is reached, the account limit (30) is.
	for i := range 40 {
		ip := fmt.Sprintf("10.%d.0.1", i)
		for j := range 2 {
			f.try(t, alice, fmt.Sprintf("guess-%d-%d", i, j), ip)
		}
	}
	if r := f.try(t, alice, ownerSecret, "10.99.0.1"); r != RateLimited {
		t.Errorf("a new address with the right secret during the attack: %v, want %v", r, RateLimited)
	}
	calls := f.v.callCount()
	for i := range 3 {
		if r := f.try(t, alice, ownerSecret, owner); r != OK {
			t.Fatalf("owner login %d during the attack: %v, want ok", i+1, r)
		}
	}
	if f.v.callCount() == calls {
		t.Error("owner logins were not verified")
	}
	// The owner's typo is counted against its own address only, and does
	// not lock it out.
	f.fail(t, 1, alice, owner)
	if r := f.try(t, alice, ownerSecret, owner); r != OK {
		t.Errorf("owner after a typo: %v, want ok", r)
	}
}

func TestGuardTrustedNetworksExempt(t *testing.T) {
	f := newGuardFixture(t, Limits{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}})
	for _, ip := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1"} {
		f.fail(t, 50, alice, ip)
		if r := f.try(t, alice, ownerSecret, ip); r != OK {
			t.Errorf("trusted %s after 50 failures: %v, want ok", ip, r)
		}
	}
	if d := f.clk.takeDelays(); len(d) != 0 {
		t.Errorf("trusted failures were delayed: %v", d)
	}
	if n := f.cnt.Len(); n != 0 {
		t.Errorf("%d counters for trusted attempts, want 0", n)
	}
}

func TestGuardSuccessResetsAccountAddress(t *testing.T) {
	f := newGuardFixture(t, Limits{MaxPerAccountAddress: 5, MaxPerAddress: 100})
	const ip = "192.0.2.10"
	f.fail(t, 4, alice, ip)
	if r := f.try(t, alice, ownerSecret, ip); r != OK {
		t.Fatal(r)
	}
	f.fail(t, 4, alice, ip) // 8 in the window, 4 since the success
	if r := f.try(t, alice, ownerSecret, ip); r != OK {
		t.Fatalf("after 4+4 failures around a success: %v, want ok", r)
	}
	f.fail(t, 5, alice, ip)
	if r := f.try(t, alice, ownerSecret, ip); r != RateLimited {
		t.Errorf("after 5 failures in a row: %v, want %v", r, RateLimited)
	}
	// The limit is per account: another account from the address works.
	f.v.ok[bob] = "bob-secret"
	if r := f.try(t, bob, "bob-secret", ip); r != OK {
		t.Errorf("another account from the same address: %v, want ok", r)
	}
}

func TestGuardBlockedCostsNoArgon2(t *testing.T) {
	pf := population(t)
	clk := &fakeClock{t: t0}
	g := &Guard{Verifier: pf.v, Counters: &memcount.Counters{Now: clk.Now}, Now: clk.Now, Sleep: clk.Sleep,
		Limits: Limits{MaxPerAddress: 3}, Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	for i := range 3 {
		if d, err := g.Verify(ctx, attempt(alice, fmt.Sprintf("wrong %d", i))); err != nil || d.Result != BadSecret {
			t.Fatalf("failure %d: %+v, %v", i, d, err)
		}
	}
	before := pf.v.HashEvaluations()
	for range 20 {
		d, err := g.Verify(ctx, attempt(alice, pf.pw["alice/laptop"].Password))
		if err != nil || d.Result != RateLimited {
			t.Fatalf("blocked attempt: %+v, %v", d, err)
		}
	}
	if n := pf.v.HashEvaluations() - before; n != 0 {
		t.Errorf("20 blocked attempts ran %d argon2id evaluations, want 0", n)
	}
}

// failingCounters fail every call.
type failingCounters struct{}

func (failingCounters) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errors.New("redis: connection refused")
}
func (failingCounters) Get(context.Context, string) (int64, error) {
	return 0, errors.New("redis: connection refused")
}
func (failingCounters) GetMany(context.Context, []string) ([]int64, error) {
	return nil, errors.New("redis: connection refused")
}
func (failingCounters) Delete(context.Context, string) error {
	return errors.New("redis: connection refused")
}
func (failingCounters) IncrMany(context.Context, []store.Incr) ([]int64, error) {
	return nil, errors.New("redis: connection refused")
}

func TestGuardCountersDown(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	f.g.Counters = failingCounters{}
	_, err := f.g.Verify(context.Background(), attempt(alice, ownerSecret))
	if err == nil {
		t.Fatal("Verify succeeded without its counters; want a temporary failure")
	}
	if f.v.callCount() != 0 {
		t.Error("the verifier ran although the limits could not be checked")
	}
	// Trusted addresses need no counters.
	f.g.Limits.Trusted = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	if d, err := f.g.Verify(context.Background(), attempt(alice, ownerSecret)); err != nil || d.Result != OK {
		t.Errorf("trusted with counters down: %+v, %v", d, err)
	}
}

func TestGuardStoreErrorIsTemporary(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	var logs bytes.Buffer
	f.g.Audit = &Auditor{Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	f.v.err = errors.New("store: unavailable")
	if _, err := f.g.Verify(context.Background(), attempt(alice, ownerSecret)); err == nil {
		t.Fatal("no error")
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"result":"auth-error"`)) {
		t.Errorf("audit: %s", logs.Bytes())
	}
	for _, key := range []string{"fail:ip:198.51.100.7/32", "fail:acct:" + alice, "fail:acctip:" + alice + "|198.51.100.7/32"} {
		if n, _ := f.cnt.Get(context.Background(), key); n != 0 {
			t.Errorf("a store failure was counted as a login failure (%s = %d)", key, n)
		}
	}
}

func TestTarpitTable(t *testing.T) {
	l := Limits{TarpitBase: time.Second, TarpitMax: 10 * time.Second}
	for n, want := range map[int64]time.Duration{
		-1: time.Second, 0: time.Second, 1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second,
		5: 10 * time.Second, 64: 10 * time.Second, 1 << 40: 10 * time.Second,
	} {
		if got := l.tarpit(n); got != want {
			t.Errorf("tarpit(%d) = %v, want %v", n, got, want)
		}
	}
}

// panickyVerifier panics on every login, as a bug in a Verifier would.
type panickyVerifier struct{}

func (panickyVerifier) Verify(context.Context, Attempt) (Decision, error) {
	panic("verifier bug")
}

// TestGuardPanicIsAnErrorOfThatLogin: a panic while deciding a login (on
// the flight's own goroutine) fails that login with an error; it must not
// end the process with every other session in it.
func TestGuardPanicIsAnErrorOfThatLogin(t *testing.T) {
	f := newGuardFixture(t, Limits{})
	f.g.Verifier = panickyVerifier{}
	a := attempt(alice, ownerSecret)
	a.RemoteIP = netip.MustParseAddr("192.0.2.1")
	d, err := f.g.Verify(context.Background(), a)
	if err == nil || d.Result == OK {
		t.Fatalf("Verify = %v, %v; want an error", d.Result, err)
	}
}
