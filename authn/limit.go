package authn

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/passgate/passgate/store"
)

// Defaults of Limits, modelled on Dovecot's auth_penalty (2 s doubling up to
// 15 s) and mox's per-address and per-network failed-login limiter.
const (
	DefaultFailWindow           = 10 * time.Minute
	DefaultMaxPerAddress        = 10
	DefaultMaxPerNetwork        = 100
	DefaultMaxPerAccount        = 30
	DefaultMaxPerAccountAddress = 5
	DefaultTarpitBase           = 2 * time.Second
	DefaultTarpitMax            = 15 * time.Second
	DefaultKnownAddressTTL      = 7 * 24 * time.Hour

	DefaultMaxHashesPerAddress = 200
	DefaultMaxHashesPerNetwork = 1000
	DefaultMaxHashesPerAccount = 100

	DefaultMaxSecondFactorFailures = 5
	DefaultSecondFactorWindow      = time.Hour

	DefaultBlockedVerifyInterval = 5 * time.Second
)

// Limits bound failed logins and the argon2id work anyone can cause.
// Failures are counted in fixed windows of Window per source address (an
// IPv4 /32 or IPv6 /64), per source network (IPv4 /24, IPv6 /48), per
// account, and per account and address. Once a count reaches its maximum,
// attempts it covers are refused (RateLimited) without running argon2id
// until its window ends. Every attempt is counted before it is verified
// (and given back if it did not fail), so parallel attempts cannot race
// past a maximum. Zero fields take the Default values.
type Limits struct {
	// Window is the length of the fixed counting windows.
	Window time.Duration
	// MaxPerAddress is the failures allowed from one IPv4 address or
	// IPv6 /64, over all accounts.
	MaxPerAddress int
	// MaxPerNetwork is the failures allowed from one IPv4 /24 or IPv6
	// /48, over all accounts (password spraying from a network).
	MaxPerNetwork int
	// MaxPerAccount is the failures allowed against one account from
	// addresses that have not logged in to it successfully within
	// KnownAddressTTL. Such known addresses are never refused by this
	// limit, so that attackers elsewhere cannot lock the owner out; and
	// while it refuses, an app password of the account is still verified
	// from any address, at most once per BlockedVerifyInterval.
	MaxPerAccount int
	// MaxPerAccountAddress is the failures allowed against one account
	// from one address; a success from the address resets it.
	MaxPerAccountAddress int
	// MaxHashesPer... bound the argon2id evaluations (successes
	// included) that one address, network and account can cause in a
	// Window, whatever the outcome: the work of attempts that the failure
	// limits do not count (a success, a repeat of a secret whose outcome
	// changed). Raise them for large networks behind one address.
	MaxHashesPerAddress int
	MaxHashesPerNetwork int
	MaxHashesPerAccount int
	// MaxSecondFactorFailures is the wrong second factors (TOTP or
	// recovery codes) allowed per account in a SecondFactorWindow. A new
	// password step does not reset it, nor does a success: it is the
	// account's lockout of the second factor. Second-factor failures also
	// count in the address, network and account limits above.
	MaxSecondFactorFailures int
	SecondFactorWindow      time.Duration
	// BlockedVerifyInterval: while MaxPerAccount refuses an account, one
	// attempt per interval whose secret is one of the account's app
	// passwords (found by its keyed tag, without a hash) is verified, so
	// that the owner's clients get in from new addresses.
	BlockedVerifyInterval time.Duration
	// TarpitBase is the delay before the reply to the first failure from
	// an address; each further failure of the address in the window
	// doubles it, up to TarpitMax. Refused (RateLimited) attempts wait
	// TarpitMax.
	TarpitBase time.Duration
	TarpitMax  time.Duration
	// KnownAddressTTL is how long an address that logged in successfully
	// stays known to the account (refreshed by every success).
	KnownAddressTTL time.Duration
	// Trusted networks are exempt from counting, delays and refusals
	// (except an account's second-factor lockout).
	Trusted []netip.Prefix
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (l *Limits) window() time.Duration { return orDefault(l.Window, DefaultFailWindow) }
func (l *Limits) tarpitMax() time.Duration {
	return orDefault(l.TarpitMax, DefaultTarpitMax)
}

// tarpit returns the delay after the n-th failure of an address:
// TarpitBase × 2^(n-1), at most TarpitMax.
func (l *Limits) tarpit(n int64) time.Duration {
	d, maxD := orDefault(l.TarpitBase, DefaultTarpitBase), l.tarpitMax()
	for ; n > 1 && d < maxD; n-- {
		d *= 2
	}
	return min(d, maxD)
}

// trusted reports whether ip is in a trusted network.
func (l *Limits) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// source is where an attempt came from, as the limits count it.
type source struct {
	addr string // "203.0.113.7/32", "2001:db8:1:2::/64"; "-" if unknown
	net  string // "203.0.113.0/24", "2001:db8:1::/48"; "" if unknown
}

func sourceOf(ip netip.Addr) source {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return source{addr: "-"}
	}
	addrBits, netBits := 32, 24
	if ip.Is6() {
		addrBits, netBits = 64, 48
	}
	a, _ := ip.Prefix(addrBits)
	n, _ := ip.Prefix(netBits)
	return source{addr: a.String(), net: n.String()}
}

// limitKeys are the counter names of one attempt; address keys are empty
// when the address is unknown, account keys when the username is not
// valid (no account can be behind it).
type limitKeys struct {
	addr, net          string // fail:ip:<prefix>
	acct, acctAddr, ok string // fail:acct:, fail:acctip:, ok:acctip:
	hashAddr, hashNet  string // hash:ip:<prefix>
	hashAcct           string // hash:acct:
	secondFactor       string // fail:2fa:
	token              string // verify:blocked: (BlockedVerifyInterval)
}

func keysFor(user string, src source) limitKeys {
	var k limitKeys
	if src.net != "" {
		k.addr, k.net = "fail:ip:"+src.addr, "fail:ip:"+src.net
		k.hashAddr, k.hashNet = "hash:ip:"+src.addr, "hash:ip:"+src.net
	}
	if user != "" {
		k.acct = "fail:acct:" + user
		k.acctAddr = "fail:acctip:" + user + "|" + src.addr
		k.ok = "ok:acctip:" + user + "|" + src.addr
		k.hashAcct = "hash:acct:" + user
		k.secondFactor = "fail:2fa:" + user
		k.token = "verify:blocked:" + user
	}
	return k
}

// counted is one counter of a reservation: its key, its name in the log,
// its maximum and its window.
type counted struct {
	key, name string
	max       int64
	ttl       time.Duration
}

// reservation is one attempt counted before it is decided: every counter
// that would count it as a failure (and the hash budgets, if it may cost
// a hash) is incremented first, and the attempt is decided on the values
// the increments returned. Once the outcome is known, settle gives back
// what it must. A nil *reservation (trusted networks) counts nothing.
type reservation struct {
	g      *Guard
	k      limitKeys
	checks []counted
	vals   map[string]int64 // after the increments
	known  bool             // the address logged in to the account before
}

// reserve counts an attempt with keys k: a login (hashes: the hash
// budgets too) or a second factor.
func (g *Guard) reserve(ctx context.Context, k limitKeys, hashes, secondFactor bool) (*reservation, error) {
	l := g.limits()
	w := l.window()
	checks := []counted{
		{k.addr, "address", int64(orDefault(l.MaxPerAddress, DefaultMaxPerAddress)), w},
		{k.net, "network", int64(orDefault(l.MaxPerNetwork, DefaultMaxPerNetwork)), w},
		{k.acctAddr, "account-address", int64(orDefault(l.MaxPerAccountAddress, DefaultMaxPerAccountAddress)), w},
		{k.acct, "account", int64(orDefault(l.MaxPerAccount, DefaultMaxPerAccount)), w},
	}
	if secondFactor {
		checks = append(checks, counted{k.secondFactor, "second-factor",
			int64(orDefault(l.MaxSecondFactorFailures, DefaultMaxSecondFactorFailures)),
			orDefault(l.SecondFactorWindow, DefaultSecondFactorWindow)})
	}
	if hashes {
		checks = append(checks,
			counted{k.hashAddr, "address-hashes", int64(orDefault(l.MaxHashesPerAddress, DefaultMaxHashesPerAddress)), w},
			counted{k.hashNet, "network-hashes", int64(orDefault(l.MaxHashesPerNetwork, DefaultMaxHashesPerNetwork)), w},
			counted{k.hashAcct, "account-hashes", int64(orDefault(l.MaxHashesPerAccount, DefaultMaxHashesPerAccount)), w})
	}
	r := &reservation{g: g, k: k, checks: make([]counted, 0, len(checks)),
		vals: make(map[string]int64, len(checks)+1)}
	incrs := make([]store.Incr, 0, len(checks)+1)
	for _, c := range checks {
		if c.key != "" {
			r.checks = append(r.checks, c)
			incrs = append(incrs, store.Incr{Key: c.key, N: 1, TTL: c.ttl})
		}
	}
	if k.ok != "" {
		incrs = append(incrs, store.Incr{Key: k.ok}) // read only
	}
	if len(incrs) == 0 {
		return r, nil
	}
	vals, err := g.Counters.IncrMany(ctx, incrs)
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	for i, in := range incrs {
		r.vals[in.Key] = vals[i]
	}
	r.known = k.ok != "" && r.vals[k.ok] > 0
	return r, nil
}

// refused returns the name of the first failure limit that refuses the
// attempt ("" if none): a counter that went past its maximum with this
// attempt. The owner's known address passes the account limit.
func (r *reservation) refused() string {
	if r == nil {
		return ""
	}
	for _, c := range r.checks {
		if c.name == "account" && r.known {
			continue
		}
		if !isHashBudget(c.name) && r.vals[c.key] > c.max {
			return c.name
		}
	}
	return ""
}

// overBudget returns the name of the first hash budget the attempt
// exceeds ("" if none); only attempts about to run argon2id ask.
func (r *reservation) overBudget() string {
	if r == nil {
		return ""
	}
	for _, c := range r.checks {
		if isHashBudget(c.name) && r.vals[c.key] > c.max {
			return c.name
		}
	}
	return ""
}

func isHashBudget(name string) bool {
	return name == "address-hashes" || name == "network-hashes" || name == "account-hashes"
}

// giveBack returns every increment: the attempt was refused, was a
// repeat of a known outcome, or the store failed.
func (r *reservation) giveBack(ctx context.Context) {
	if r == nil {
		return
	}
	var incrs []store.Incr
	for _, c := range r.checks {
		incrs = append(incrs, store.Incr{Key: c.key, N: -1})
	}
	r.settle(ctx, incrs)
}

// succeeded settles a success: nothing stays counted as a failure (the
// hash budgets keep the hash, if one ran); the account+address failures
// are reset and the address is marked as known to the account for
// KnownAddressTTL (a new window, since an increment does not extend one).
// Earlier second-factor failures stay: they are the account's lockout.
func (r *reservation) succeeded(ctx context.Context, hashed bool) {
	if r == nil {
		return
	}
	var incrs []store.Incr
	for _, c := range r.checks {
		switch {
		case c.key == r.k.acctAddr:
			incrs = append(incrs, store.Incr{Key: c.key, Reset: true})
		case hashed && isHashBudget(c.name):
		default:
			incrs = append(incrs, store.Incr{Key: c.key, N: -1})
		}
	}
	if r.k.ok != "" {
		ttl := orDefault(r.g.limits().KnownAddressTTL, DefaultKnownAddressTTL)
		incrs = append(incrs, store.Incr{Key: r.k.ok, N: 1, TTL: ttl, Reset: true})
	}
	r.settle(ctx, incrs)
}

// failed settles a failure: it stays counted, except against the account
// from the owner's known address (so that the owner's typos cannot lock
// the account).
func (r *reservation) failed(ctx context.Context) {
	if r == nil || !r.known || r.k.acct == "" {
		return
	}
	r.settle(ctx, []store.Incr{{Key: r.k.acct, N: -1}})
}

// settle applies incrs. Counter errors are logged: the decision stands.
func (r *reservation) settle(ctx context.Context, incrs []store.Incr) {
	if len(incrs) == 0 {
		return
	}
	if _, err := r.g.Counters.IncrMany(ctx, incrs); err != nil {
		r.g.logger().WarnContext(ctx, "rate limit: settling an attempt failed", "err", err)
	}
}

// delay is the tarpit of the attempt's outcome: TarpitBase × 2^(n-1) for
// the address's n-th failure (counting this one if it is kept).
func (r *reservation) delay(kept bool) time.Duration {
	if r == nil {
		return 0
	}
	n := int64(1)
	if r.k.addr != "" {
		n = r.vals[r.k.addr]
		if !kept {
			n--
		}
	}
	return r.g.limits().tarpit(max(n, 1))
}

// takeToken reports whether the account refused by MaxPerAccount may have
// one more verification now: one per BlockedVerifyInterval, shared by
// every instance through the counters.
func (g *Guard) takeToken(ctx context.Context, k limitKeys) bool {
	if k.token == "" {
		return false
	}
	ttl := orDefault(g.limits().BlockedVerifyInterval, DefaultBlockedVerifyInterval)
	v, err := g.Counters.IncrMany(ctx, []store.Incr{{Key: k.token, N: 1, TTL: ttl}})
	if err != nil {
		g.logger().WarnContext(ctx, "rate limit: blocked-account token failed", "err", err)
		return false
	}
	return v[0] == 1
}
