package upstream

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// TestSendProxy: with SendProxy the upstream reads the client's address
// from the header passgate sends first; passgate's own checks say LOCAL.
func TestSendProxy(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.9:50123")
	for _, tc := range []struct {
		v      ProxyVersion
		client netip.AddrPort
		want   string // source address the server reads; "" for LOCAL/UNKNOWN
	}{
		{ProxyV2, client, "192.0.2.9:50123"},
		{ProxyV1, client, "192.0.2.9:50123"},
		{ProxyV2, netip.AddrPort{}, ""},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *proxyproto.Header, 1)
		go func() {
			defer ln.Close()
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			h, _ := proxyproto.Read(bufio.NewReader(c))
			got <- h
		}()
		c := Config{Address: ln.Addr().String(), SendProxy: tc.v}
		k, err := c.connectFor(t.Context(), tc.client)
		if err != nil {
			t.Fatalf("%s: connect: %v", tc.v, err)
		}
		h := <-got
		k.close()
		switch {
		case h == nil:
			t.Errorf("%s: the server read no header", tc.v)
		case tc.want == "" && !h.Command.IsLocal() && h.TransportProtocol != proxyproto.UNSPEC:
			t.Errorf("%s: header %+v, want LOCAL", tc.v, h)
		case tc.want != "" && h.SourceAddr.String() != tc.want:
			t.Errorf("%s: source %v, want %s", tc.v, h.SourceAddr, tc.want)
		}
	}
	if err := (Config{Address: "127.0.0.1:1", SendProxy: "v3"}).IMAP().Validate(); err == nil {
		t.Error(`send_proxy "v3" accepted`)
	}
}
