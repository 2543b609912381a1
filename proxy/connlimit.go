package proxy

import (
	"net/netip"
	"sync"
)

// Defaults of ConnLimiter.
const (
	DefaultMaxConnections      = 10000
	DefaultMaxConnectionsPerIP = 50
)

// ConnLimiter bounds the client connections open at once, in total and per
// source address (an IPv4 address or an IPv6 /64, since one IPv6 host may
// use a whole /64). The zero value uses the defaults; a nil one limits
// nothing. It is safe for concurrent use and may be shared by several
// servers.
type ConnLimiter struct {
	// Max is the total. If zero, DefaultMaxConnections. Set Max and PerIP
	// before first use; later, only with SetLimits.
	Max int
	// PerIP is the limit per source address. If zero,
	// DefaultMaxConnectionsPerIP.
	PerIP int
	// Shared, if not nil, reports source addresses that carry many
	// clients (a trusted reverse proxy): their connections count in Max
	// only, not in PerIP. If nil, every address counts in both.
	Shared func(netip.Addr) bool

	mu    sync.Mutex
	total int
	byIP  map[netip.Prefix]int
}

// Acquire counts one connection from addr. If a limit is reached it
// returns ok false and counts nothing; otherwise the caller must call
// release (once; more calls are ignored) when the connection ends. A nil
// *ConnLimiter admits every connection.
func (l *ConnLimiter) Acquire(addr netip.Addr) (release func(), ok bool) {
	release, limit := l.Admit(addr)
	return release, limit == ""
}

// Names of the limits Admit reports: the config keys that set them.
const (
	LimitTotal = "max_connections"
	LimitPerIP = "max_connections_per_ip"
)

// Admit is Acquire that says which limit refused: LimitTotal or
// LimitPerIP, with a nil release; "" when the connection is counted.
func (l *ConnLimiter) Admit(addr netip.Addr) (release func(), limit string) {
	if l == nil {
		return func() {}, ""
	}
	key := addrKey(addr)
	shared := l.Shared != nil && l.Shared(addr.Unmap())
	l.mu.Lock()
	defer l.mu.Unlock()
	maxTotal, perIP := l.Max, l.PerIP
	if maxTotal <= 0 {
		maxTotal = DefaultMaxConnections
	}
	if perIP <= 0 {
		perIP = DefaultMaxConnectionsPerIP
	}
	if shared {
		perIP = maxTotal
	}
	switch {
	case l.total >= maxTotal:
		return nil, LimitTotal
	case l.byIP[key] >= perIP:
		return nil, LimitPerIP
	}
	if l.byIP == nil {
		l.byIP = make(map[netip.Prefix]int)
	}
	l.total++
	l.byIP[key]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, ""
}

// SetLimits replaces Max and PerIP (zero: the defaults) while the limiter
// is in use, as a configuration reload does: the next Admit applies them;
// connections counted already stay counted, and are not closed.
func (l *ConnLimiter) SetLimits(maxTotal, perIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Max, l.PerIP = maxTotal, perIP
}

func (l *ConnLimiter) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[key]--; l.byIP[key] <= 0 {
		delete(l.byIP, key)
	}
}

// Open returns the number of connections counted now, in total and from
// addr (for tests and metrics).
func (l *ConnLimiter) Open(addr netip.Addr) (total, fromAddr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byIP[addrKey(addr)]
}

// addrKey is the address's /32 (IPv4) or /64 (IPv6); an invalid address
// (not TCP) is one key of its own.
func addrKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}
