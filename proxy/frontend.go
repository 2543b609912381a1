package proxy

import (
	"crypto/tls"
	"net"
)

// TLSVersion is the TLS version negotiated on c ("TLS 1.3"), or "" when c
// is not a TLS connection: what a front-end puts in authn.Attempt.TLS.
func TLSVersion(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		return tls.VersionName(tc.ConnectionState().Version)
	}
	return ""
}
