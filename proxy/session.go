package proxy

import (
	"crypto/rand"
	"encoding/base32"
	"net"
	"net/netip"
	"strings"
)

// NewSessionID returns a short random session id (13 lower-case base32
// characters, 64 bits), the same format for every protocol, so that one id
// ties together a session's log lines, its audit record and its registry
// entry.
func NewSessionID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// RemoteAddrPort is a connection's remote address with IPv4-mapped
// addresses unmapped, so that limits and audit records see one form.
func RemoteAddrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
