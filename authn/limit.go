package authn

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sync"
	"time"
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
)

// maxRecentSecrets bounds the memory of recently failed secrets (see
// recentSet); the oldest are forgotten first.
const maxRecentSecrets = 100_000

// Limits bound failed logins. Failures are counted in fixed windows of
// Window per source address (an IPv4 /32 or IPv6 /64), per source network
// (IPv4 /24, IPv6 /48), per account, and per account and address. Once a
// count reaches its maximum, attempts it covers are refused (RateLimited)
// without running argon2id until its window ends. Zero fields take the
// Default values.
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
	// limit, so that attackers elsewhere cannot lock the owner out.
	MaxPerAccount int
	// MaxPerAccountAddress is the failures allowed against one account
	// from one address; a success from the address resets it.
	MaxPerAccountAddress int
	// TarpitBase is the delay before the reply to the first failure from
	// an address; each further failure of the address in the window
	// doubles it, up to TarpitMax. Refused (RateLimited) attempts wait
	// TarpitMax.
	TarpitBase time.Duration
	TarpitMax  time.Duration
	// KnownAddressTTL is how long an address that logged in successfully
	// stays known to the account (refreshed by every success).
	KnownAddressTTL time.Duration
	// Trusted networks are exempt from counting, delays and refusals.
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

// limitKeys are the counter names of one attempt; account keys are empty
// when the username is not valid (no account can be behind it).
type limitKeys struct {
	addr, net          string // fail:ip:<prefix>; empty if the address is unknown
	acct, acctAddr, ok string // fail:acct:, fail:acctip:, ok:acctip:
}

func keysFor(user string, src source) limitKeys {
	var k limitKeys
	if src.net != "" {
		k.addr, k.net = "fail:ip:"+src.addr, "fail:ip:"+src.net
	}
	if user != "" {
		k.acct = "fail:acct:" + user
		k.acctAddr = "fail:acctip:" + user + "|" + src.addr
		k.ok = "ok:acctip:" + user + "|" + src.addr
	}
	return k
}

// blocked reports whether an attempt must be refused before verification,
// and which limit refused it (for the log).
func (g *Guard) blocked(ctx context.Context, k limitKeys) (string, error) {
	l := &g.Limits
	checks := []struct {
		key, name string
		max       int
	}{
		{k.addr, "address", orDefault(l.MaxPerAddress, DefaultMaxPerAddress)},
		{k.net, "network", orDefault(l.MaxPerNetwork, DefaultMaxPerNetwork)},
		{k.acctAddr, "account-address", orDefault(l.MaxPerAccountAddress, DefaultMaxPerAccountAddress)},
		{k.acct, "account", orDefault(l.MaxPerAccount, DefaultMaxPerAccount)},
	}
	// One round trip for every counter, the owner's known address last.
	keys := make([]string, 0, len(checks)+1)
	for _, key := range []string{k.addr, k.net, k.acctAddr, k.acct, k.ok} {
		if key != "" {
			keys = append(keys, key)
		}
	}
	vals, err := g.Counters.GetMany(ctx, keys)
	if err != nil {
		return "", fmt.Errorf("rate limit: %w", err)
	}
	value := make(map[string]int64, len(keys))
	for i, key := range keys {
		value[key] = vals[i]
	}
	for _, c := range checks {
		if c.key == "" || value[c.key] < int64(c.max) {
			continue
		}
		if c.name == "account" && value[k.ok] > 0 {
			continue // the owner's known address passes the account limit
		}
		return c.name, nil
	}
	return "", nil
}

// failed counts a failure and returns the tarpit delay. A secret that
// already failed for the same account and address within the window is
// not counted again (a client retrying a stale password), so it keeps the
// current delay instead of escalating. Counter errors are logged: the
// decision stands.
func (g *Guard) failed(ctx context.Context, k limitKeys, user string, src source, secret string) time.Duration {
	l := &g.Limits
	now := g.now()
	if g.recent.seen(now, l.window(), user, src.addr, secret) {
		n := int64(1)
		if k.addr != "" {
			n = max(n, g.get(ctx, k.addr))
		}
		return l.tarpit(n)
	}
	n := int64(1)
	if k.addr != "" {
		n = g.incr(ctx, k.addr)
		g.incr(ctx, k.net)
	}
	if k.acct != "" {
		g.incr(ctx, k.acctAddr)
		// Failures from the owner's known address do not count against
		// the account, so that the owner's typos cannot lock it.
		if g.get(ctx, k.ok) == 0 {
			g.incr(ctx, k.acct)
		}
	}
	return l.tarpit(n)
}

// succeeded resets the account+address failures and marks the address as
// known to the account for KnownAddressTTL (delete then increment, since
// an increment does not extend a counter's life).
func (g *Guard) succeeded(ctx context.Context, k limitKeys) {
	if k.acct == "" {
		return
	}
	for _, key := range []string{k.acctAddr, k.ok} {
		if err := g.Counters.Delete(ctx, key); err != nil {
			g.logger().WarnContext(ctx, "rate limit: reset failed", "key", key, "err", err)
		}
	}
	if _, err := g.Counters.Incr(ctx, k.ok, 1, orDefault(g.Limits.KnownAddressTTL, DefaultKnownAddressTTL)); err != nil {
		g.logger().WarnContext(ctx, "rate limit: marking known address failed", "key", k.ok, "err", err)
	}
}

func (g *Guard) incr(ctx context.Context, key string) int64 {
	n, err := g.Counters.Incr(ctx, key, 1, g.Limits.window())
	if err != nil {
		g.logger().WarnContext(ctx, "rate limit: count failed", "key", key, "err", err)
		return 1
	}
	return n
}

func (g *Guard) get(ctx context.Context, key string) int64 {
	n, err := g.Counters.Get(ctx, key)
	if err != nil {
		g.logger().WarnContext(ctx, "rate limit: read failed", "key", key, "err", err)
		return 0
	}
	return n
}

// recentSet remembers, for a while, keyed MACs of (username, address,
// secret) triples that failed; it never holds a secret. Its size is bounded:
// the oldest entries are forgotten first.
type recentSet struct {
	once sync.Once
	key  [32]byte // process-random HMAC key

	mu    sync.Mutex
	max   int // 0 = maxRecentSecrets
	m     map[[16]byte]*list.Element
	order list.List // of *recentItem, oldest first (all share one TTL)
}

type recentItem struct {
	mac     [16]byte
	expires time.Time
}

// seen reports whether the triple was recorded and has not expired; if
// not, it records it for ttl.
func (s *recentSet) seen(now time.Time, ttl time.Duration, user, addr, secret string) bool {
	s.once.Do(func() { rand.Read(s.key[:]) })
	h := hmac.New(sha256.New, s.key[:])
	for _, part := range []string{user, addr, secret} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var mac [16]byte
	copy(mac[:], h.Sum(nil))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[16]byte]*list.Element)
	}
	for e := s.order.Front(); e != nil && !now.Before(e.Value.(*recentItem).expires); e = s.order.Front() {
		s.remove(e)
	}
	if _, ok := s.m[mac]; ok {
		return true // unexpired: expired ones were removed above
	}
	s.m[mac] = s.order.PushBack(&recentItem{mac: mac, expires: now.Add(ttl)})
	for len(s.m) > orDefault(s.max, maxRecentSecrets) {
		s.remove(s.order.Front())
	}
	return false
}

func (s *recentSet) remove(e *list.Element) {
	delete(s.m, e.Value.(*recentItem).mac)
	s.order.Remove(e)
}
