package portal

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy"
)

var _ ConnLimiter = (*proxy.ConnLimiter)(nil)

// servePortal serves f's portal through Server.Listener on a new
// 127.0.0.1 listener (f's own httptest server does not use it).
func servePortal(t *testing.T, f *fixture) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.srv.HTTPServer(nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(f.srv.Listener(ln)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialFrom connects to addr from the loopback address local (any of
// 127.0.0.0/8 is this host on Linux), or skips if the system refuses it.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if local != "127.0.0.1" {
			t.Skipf("cannot connect from %s: %v", local, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether a request on c gets a response.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails; not a threshold
	if _, err := fmt.Fprint(c, "GET /signin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitOpen waits until lim counts total connections, as the server
// accepts and closes them in its own goroutines.
func waitOpen(t *testing.T, lim *proxy.ConnLimiter, total int) {
	t.Helper()
	for i := 0; ; i++ {
		n, _ := lim.Open(netip.Addr{})
		if n == total {
			return
		}
		if i == 1000 {
			t.Fatalf("%d connections counted, want %d", n, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListenerCapsConnections: idle connections from one address fill its
// share and no more; other addresses still get pages until the total is
// reached; a closed connection frees its place (issue 9, item 14).
func TestListenerCapsConnections(t *testing.T) {
	lim := &proxy.ConnLimiter{Max: 5, PerIP: 3}
	f := newFixture(t, func(s *Server) { s.ConnLimit = lim })
	addr := servePortal(t, f)

	var idle []net.Conn
	for range 10 { // an attacker holds idle connections
		idle = append(idle, dialFrom(t, "127.0.0.1", addr))
	}
	waitOpen(t, lim, 3)
	if _, n := lim.Open(netip.MustParseAddr("127.0.0.1")); n != 3 {
		t.Fatalf("%d connections counted from 127.0.0.1, want 3", n)
	}
	refused := 0
	for _, c := range idle[3:] {
		if !served(t, c) {
			refused++
		}
	}
	if refused != 7 {
		t.Errorf("%d of the 7 connections over the per-address limit were refused", refused)
	}
	if !served(t, idle[0]) {
		t.Error("a connection within the limit got no page")
	}

	// Another address gets pages, up to the total of 5.
	if !served(t, dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("127.0.0.2 refused while 127.0.0.1 held its share")
	}
	dialFrom(t, "127.0.0.3", addr)
	waitOpen(t, lim, 5)
	if served(t, dialFrom(t, "127.0.0.4", addr)) {
		t.Error("a sixth connection was served over a total of 5")
	}

	// Closing frees the place.
	idle[1].Close()
	waitOpen(t, lim, 4)
	if !served(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Error("no page after a connection of 127.0.0.1 closed")
	}
	if !strings.Contains(f.log.String(), "portal: connections refused") {
		t.Error("refusals not logged")
	}
}

// TestListenerTrustedProxyShares: a trusted reverse proxy carries many
// clients, so its connections count in the total only.
func TestListenerTrustedProxyShares(t *testing.T) {
	lim := &proxy.ConnLimiter{Max: 6, PerIP: 2}
	f := newFixture(t, func(s *Server) {
		s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
		s.ConnLimit = lim
		lim.Shared = s.TrustedProxy
	})
	addr := servePortal(t, f)
	var wg sync.WaitGroup
	var conns []net.Conn
	for range 4 {
		conns = append(conns, dialFrom(t, "127.0.0.9", addr))
	}
	for _, c := range conns {
		wg.Go(func() {
			if !served(t, c) {
				t.Error("the trusted proxy was refused within the total")
			}
		})
	}
	wg.Wait()
	for range 2 {
		dialFrom(t, "127.0.0.1", addr)
	}
	waitOpen(t, lim, 6)
	if served(t, dialFrom(t, "127.0.0.9", addr)) {
		t.Error("the trusted proxy got past the total")
	}
}
