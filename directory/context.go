package directory

import (
	"context"
	"net/netip"
)

type clientKey struct{}

// WithClientIP returns a context that tells the directory the address of
// the client whose login it is checking. Kinds that can forward it do
// (dovecotauth sends it as rip=, for the directory's logs and its own
// brute-force penalty); the others ignore it.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, ip)
}

// ClientIP returns the address set by WithClientIP, or the zero Addr.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientKey{}).(netip.Addr)
	return ip
}
