package proxy

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// acceptOne listens with a ProxyListener trusting trusted, dials it,
// writes what write writes, and returns the accepted connection (nil if
// none came) and the client's side.
func acceptOne(t *testing.T, trusted string, write func(net.Conn)) (net.Conn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &ProxyListener{Listener: raw, Trusted: []netip.Prefix{netip.MustParsePrefix(trusted)}, HeaderTimeout: time.Second}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	write(c)
	got := make(chan net.Conn, 1)
	go func() {
		a, err := ln.Accept()
		if err == nil {
			got <- a
		}
	}()
	select {
	case a := <-got:
		t.Cleanup(func() { a.Close() })
		return a, c
	case <-time.After(3 * time.Second):
		return nil, c
	}
}

func header(version byte, src string) func(net.Conn) {
	return func(c net.Conn) {
		h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			panic(err)
		}
		c.Write([]byte("a NOOP\r\n"))
	}
}

func TestProxyListener(t *testing.T) {
	for _, v := range []byte{1, 2} {
		a, _ := acceptOne(t, "127.0.0.0/8", header(v, "192.0.2.7:4321"))
		if a == nil || a.RemoteAddr().String() != "192.0.2.7:4321" {
			t.Fatalf("v%d from a trusted proxy: accepted %v", v, a)
		}
		buf := make([]byte, 8)
		if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "a NOOP\r\n" {
			t.Errorf("v%d: data after the header %q, %v", v, buf, err)
		}
	}
	// A trusted proxy that sends no header: refused (closed, never accepted).
	a, c := acceptOne(t, "127.0.0.0/8", func(c net.Conn) { c.Write([]byte("a LOGIN x y\r\n")) })
	if a != nil {
		t.Errorf("connection without header from a trusted proxy accepted, remote %v", a.RemoteAddr())
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection without header from a trusted proxy left open")
	}
	// An untrusted source: its header is not honoured, but passed on as data.
	a, c = acceptOne(t, "10.0.0.0/8", header(1, "192.0.2.7:4321"))
	if a == nil || a.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("untrusted: accepted %v, want the real address %v", a, c.LocalAddr())
	}
	line := make([]byte, 6)
	io.ReadFull(a, line)
	if !strings.HasPrefix(string(line), "PROXY ") {
		t.Errorf("untrusted: the protocol sees %q, want the header as data", line)
	}
}
