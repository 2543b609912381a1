package smtp

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// clientConn is an accepted client connection with the state that must
// outlive go-smtp's sessions (a STARTTLS starts a new session): the count of
// failed logins, and the close that follows a final 421.
type clientConn struct {
	net.Conn
	set *connSet

	failed     atomic.Int32
	closeAfter atomic.Bool // close once the next reply is written
	closeOnce  sync.Once
}

// Write writes p and, after the reply that ends the connection, closes it.
func (c *clientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfter.Load() {
		c.Close()
	}
	return n, err
}

// Close closes the connection once and forgets it.
func (c *clientConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.set.remove(c)
	})
	return err
}

// clientConnOf finds the clientConn under a go-smtp connection (plain, or
// TLS after STARTTLS or on the implicit-TLS listener).
func clientConnOf(nc net.Conn) *clientConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	cc, _ := nc.(*clientConn)
	return cc
}

// listener wraps accepted connections in clientConn.
type listener struct {
	net.Listener
	set *connSet
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &clientConn{Conn: c, set: l.set}
	l.set.add(cc)
	return cc, nil
}

// connSet tracks the open client connections, so that Close and an expired
// Shutdown can end them all.
type connSet struct {
	mu    sync.Mutex
	conns map[*clientConn]struct{}
}

func (s *connSet) add(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*clientConn]struct{})
	}
	s.conns[c] = struct{}{}
}

func (s *connSet) remove(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := make([]*clientConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
