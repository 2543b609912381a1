package proxy

import (
	"context"
	"net"
)

// Listen listens on the TCP address addr for a front-end. Accepted
// connections have TCP keepalive as net.Listen gives them (Go's defaults:
// first probe after 15 s idle, then every 15 s, 9 probes) and no Nagle
// delay. On Linux the keepalive options are set once on the listening
// socket, which accepted sockets inherit, instead of four setsockopt
// calls per accepted connection.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	return listenConfig().Listen(ctx, "tcp", addr)
}
