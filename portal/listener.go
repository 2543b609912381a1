package portal

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ConnLimiter bounds the connections open at once, in total and per client
// address (proxy.ConnLimiter implements it, for every protocol).
type ConnLimiter interface {
	// Acquire counts a connection from addr. ok false: a limit is reached
	// and nothing was counted. Otherwise release is called once the
	// connection ends.
	Acquire(addr netip.Addr) (release func(), ok bool)
}

// refusedLogEvery spaces the log lines about refused connections, so that
// a flood of connections is not also a flood of log lines.
const refusedLogEvery = 10 * time.Second

// Listener returns ln with ConnLimit applied: a connection over a limit is
// closed as soon as it is accepted, before a byte of it is read (before
// the TLS handshake on an HTTPS listener), so that one address cannot hold
// more than its share of the portal's connections and of the process's
// file descriptors; HTTPServer's timeouts then bound how long an admitted
// connection may idle. Without ConnLimit it returns ln.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.ConnLimit == nil {
		return ln
	}
	return &limitListener{Listener: ln, s: s}
}

type limitListener struct {
	net.Listener
	s *Server

	mu          sync.Mutex
	refused     int // since the last log line
	lastLogged  time.Time
	lastRefused netip.Addr
}

// Accept returns the next connection within the limits, closing those
// over them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := peerAddr(c.RemoteAddr())
		if release, ok := l.s.ConnLimit.Acquire(addr); ok {
			return &limitedConn{Conn: c, release: release}, nil
		}
		c.Close()
		l.logRefused(addr)
	}
}

// logRefused counts a refused connection and logs the count at most once
// per refusedLogEvery.
func (l *limitListener) logRefused(addr netip.Addr) {
	l.mu.Lock()
	l.refused++
	l.lastRefused = addr
	now := l.s.now()
	if now.Sub(l.lastLogged) < refusedLogEvery {
		l.mu.Unlock()
		return
	}
	n, last := l.refused, l.lastRefused
	l.refused, l.lastLogged = 0, now
	l.mu.Unlock()
	l.s.logger().Warn("portal: connections refused: too many open", "refused", n, "last_remote", last.String())
}

// limitedConn frees its place in the ConnLimiter when closed.
type limitedConn struct {
	net.Conn
	release func() // idempotent
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite half-closes a TCP connection: net/http uses it to end a
// response before closing, so that the client reads it whole.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// peerAddr is the address of a TCP peer (IPv4-mapped addresses unmapped);
// the zero Addr for another kind of connection.
func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
