package proxy

import (
	"net/netip"
	"sync"
	"testing"
)

func TestConnLimiter(t *testing.T) {
	l := &ConnLimiter{Max: 5, PerIP: 2}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	acquire := func(addr netip.Addr, want bool) func() {
		t.Helper()
		rel, ok := l.Acquire(addr)
		if ok != want {
			t.Fatalf("Acquire(%v) ok = %v, want %v", addr, ok, want)
		}
		return rel
	}
	ra1 := acquire(a, true)
	acquire(a, true)
	acquire(a, false) // per address
	acquire(netip.MustParseAddr("::ffff:192.0.2.1"), false)
	acquire(b, true)
	acquire(netip.MustParseAddr("2001:db8::1"), true)
	acquire(netip.MustParseAddr("2001:db8::2"), true) // same /64
	acquire(netip.MustParseAddr("2001:db8::3"), false)
	acquire(netip.MustParseAddr("2001:db8:0:1::1"), false) // total
	ra1()
	ra1() // idempotent
	if total, fromA := l.Open(a); total != 4 || fromA != 1 {
		t.Errorf("after one release: total %d, from a %d; want 4, 1", total, fromA)
	}
	acquire(a, true)
	acquire(b, false)
}

// A shared address (a trusted reverse proxy) counts in the total only.
func TestConnLimiterShared(t *testing.T) {
	proxyAddr := netip.MustParseAddr("10.0.0.1")
	l := &ConnLimiter{Max: 4, PerIP: 1, Shared: func(a netip.Addr) bool { return a == proxyAddr }}
	for i := range 3 {
		if _, ok := l.Acquire(netip.MustParseAddr("::ffff:10.0.0.1")); !ok {
			t.Fatalf("shared address refused at %d of a total of 4", i+1)
		}
	}
	other := netip.MustParseAddr("192.0.2.1")
	if _, ok := l.Acquire(other); !ok {
		t.Fatal("other address refused below both limits")
	}
	if _, ok := l.Acquire(proxyAddr); ok {
		t.Error("shared address passed the total")
	}
	if _, ok := l.Acquire(netip.MustParseAddr("10.0.0.2")); ok {
		t.Error("an address passed the total")
	}
}

func TestConnLimiterConcurrent(t *testing.T) {
	l := &ConnLimiter{Max: 1000, PerIP: 1000}
	addr := netip.MustParseAddr("198.51.100.1")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				if rel, ok := l.Acquire(addr); ok {
					rel()
				}
			}
		})
	}
	wg.Wait()
	if total, from := l.Open(addr); total != 0 || from != 0 {
		t.Errorf("after all releases: %d, %d", total, from)
	}
	if len(l.byIP) != 0 {
		t.Errorf("%d addresses left in the map", len(l.byIP))
	}
}

func TestConnLimiterDefaults(t *testing.T) {
	var l ConnLimiter
	addr := netip.MustParseAddr("203.0.113.9")
	for i := range DefaultMaxConnectionsPerIP {
		if _, ok := l.Acquire(addr); !ok {
			t.Fatalf("connection %d refused", i+1)
		}
	}
	if _, ok := l.Acquire(addr); ok {
		t.Errorf("connection %d accepted, default per-address limit is %d", DefaultMaxConnectionsPerIP+1, DefaultMaxConnectionsPerIP)
	}
}

// TestNilConnLimiter: a front-end without Limits.Conns admits every
// connection, and its release is safe to call.
func TestNilConnLimiter(t *testing.T) {
	var l *ConnLimiter
	for range DefaultMaxConnectionsPerIP + 1 {
		release, ok := l.Acquire(netip.MustParseAddr("192.0.2.1"))
		if !ok {
			t.Fatal("a nil ConnLimiter refused a connection")
		}
		release()
	}
}

// TestConnLimiterSetLimits: new limits set while connections are counted
// (a reload) apply to the next Admit; connections already counted stay.
// Run with -race: SetLimits races no Admit.
func TestConnLimiterSetLimits(t *testing.T) {
	l := &ConnLimiter{Max: 100, PerIP: 100}
	addr := netip.MustParseAddr("198.51.100.1")
	var held []func()
	for range 3 {
		rel, ok := l.Acquire(addr)
		if !ok {
			t.Fatal("refused under the first limits")
		}
		held = append(held, rel)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if rel, ok := l.Acquire(netip.MustParseAddr("198.51.100.2")); ok {
					rel()
				}
			}
		})
	}
	for i := range 200 {
		l.SetLimits(50+i%3, 10+i%3)
	}
	wg.Wait()
	l.SetLimits(10, 2)
	if _, limit := l.Admit(addr); limit != LimitPerIP {
		t.Errorf("a 4th connection from the address after PerIP became 2: %q, want %q", limit, LimitPerIP)
	}
	if total, from := l.Open(addr); total != 3 || from != 3 {
		t.Errorf("open after SetLimits: %d total, %d from the address; want the 3 held", total, from)
	}
	l.SetLimits(0, 0) // the defaults
	if rel, limit := l.Admit(addr); limit != "" {
		t.Errorf("with the defaults: refused by %q", limit)
	} else {
		rel()
	}
	for _, rel := range held {
		rel()
	}
}
