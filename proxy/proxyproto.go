package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// DefaultProxyHeaderTimeout bounds the read of a PROXY header when
// ProxyListener.HeaderTimeout is zero.
const DefaultProxyHeaderTimeout = 5 * time.Second

// ProxyListener accepts connections that carry the PROXY protocol (v1 or
// v2, haproxy.org/download/2.9/doc/proxy-protocol.txt) from trusted load
// balancers, so that the client's address, not the balancer's, is what
// the limits, the audit, the logs and the upstream see: the accepted
// connection's RemoteAddr is the header's source.
//
//   - A connection from a Trusted network must start with a header; one
//     without, or with a malformed one, is closed (a balancer that sends
//     none is misconfigured). A LOCAL header (health checks) keeps the
//     balancer's own address.
//   - A connection from anywhere else is passed on untouched: its header
//     is never parsed, so it reaches the protocol as a command line and is
//     refused there (IMAP BAD, SMTP 500); nobody else can claim an
//     address.
//
// Headers are read in a goroutine per connection, within HeaderTimeout, so
// that a slow balancer never holds up Accept.
type ProxyListener struct {
	net.Listener
	Trusted []netip.Prefix
	// HeaderTimeout bounds the header's read. If zero,
	// DefaultProxyHeaderTimeout.
	HeaderTimeout time.Duration
	// Logger receives a line per refused connection. If nil, none.
	Logger *slog.Logger

	once  sync.Once
	ready chan net.Conn
	done  chan struct{}
	err   error // the underlying Accept's error, once done is closed
}

// Accept returns the next connection, with its header read if it came from
// a trusted network.
func (l *ProxyListener) Accept() (net.Conn, error) {
	l.once.Do(l.start)
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

func (l *ProxyListener) start() {
	l.ready, l.done = make(chan net.Conn), make(chan struct{})
	go l.acceptLoop()
}

// acceptLoop accepts until the listener fails and hands each connection
// to Accept, those from trusted networks once their header is read.
func (l *ProxyListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			l.err = err
			close(l.done)
			return
		}
		backoff = 0
		if !l.trusted(c.RemoteAddr()) {
			go l.hand(c)
			continue
		}
		go l.readHeader(c)
	}
}

// hand gives c to Accept, or closes it if the listener is done.
func (l *ProxyListener) hand(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *ProxyListener) trusted(a net.Addr) bool {
	ip := RemoteAddrPort(a).Addr().Unmap()
	for _, p := range l.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readHeader reads the PROXY header of a connection from a trusted
// network and hands it on, or closes it.
func (l *ProxyListener) readHeader(c net.Conn) {
	timeout := l.HeaderTimeout
	if timeout <= 0 {
		timeout = DefaultProxyHeaderTimeout
	}
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(timeout))
	if pc.ProxyHeader() == nil { // none, malformed, or not within timeout
		if l.Logger != nil {
			l.Logger.Info("proxy protocol: connection from a trusted proxy refused: no valid PROXY header",
				"proxy", c.RemoteAddr().String())
		}
		c.Close()
		return
	}
	l.hand(pc)
}
