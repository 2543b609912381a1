package upstream

import (
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"
)

// ProxyVersion is the PROXY protocol header passgate sends first on each
// upstream connection (Config.SendProxy), so that a server that reads it
// (Dovecot's haproxy = yes listeners, Stalwart) logs and limits the
// client's address: the alternative to IMAP ID and XCLIENT.
type ProxyVersion string

const (
	ProxyNone ProxyVersion = ""
	ProxyV1   ProxyVersion = "v1"
	ProxyV2   ProxyVersion = "v2"
)

// sendProxy writes the header of c.SendProxy on conn: the client's address
// as source, conn's peer as destination; LOCAL (v2) or UNKNOWN (v1) when
// client is not valid (passgate's own checks).
func (c *Config) sendProxy(conn net.Conn, client netip.AddrPort) error {
	var version byte
	switch c.SendProxy {
	case ProxyNone:
		return nil
	case ProxyV1:
		version = 1
	default:
		version = 2
	}
	h := &proxyproto.Header{Version: version, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if client.IsValid() {
		h = proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(client), conn.RemoteAddr())
	}
	_, err := h.WriteTo(conn)
	return err
}
