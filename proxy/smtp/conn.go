package smtp

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/proxy"
)

// clientConn is an accepted client connection with the state that must
// outlive go-smtp's sessions (a STARTTLS starts a new session): the session
// id, the count of failed logins and of lines read before AUTH, the
// connection-limit slot, and the close that follows a final 421.
//
// go-smtp reads and writes it from the connection's goroutine only (the
// TLS layer, when there is one, sits on top of it); Close may come from
// any goroutine.
type clientConn struct {
	net.Conn
	set *connSet
	id  string       // session id: in every log line and audit record
	log *slog.Logger // carries session and remote

	release        func()        // frees the Limits.Conns slot; nil if none was taken
	refusedBy      string        // the Limits.Conns limit that refused it, or ""
	maxPreauth     int32         // lines allowed before AUTH
	preauthTimeout time.Duration // caps every deadline before AUTH
	writeTimeout   time.Duration

	failed     atomic.Int32
	closeAfter atomic.Bool // close once the next reply is written
	closeOnce  sync.Once

	// Pre-auth command cap (see SetReadDeadline).
	greeted  atomic.Bool  // something was written: reads are commands now
	authed   atomic.Bool  // AUTH succeeded: no more counting
	preauth  atomic.Int32 // lines read before AUTH
	refused  atomic.Bool  // the cap's 421 was sent
	timedOut atomic.Bool  // a read hit its deadline: the next one fails at once
	replyTo  atomic.Pointer[net.Conn]
	sniffTLS bool // plain listener, nothing read yet: refuse a ClientHello

	tlsFP atomic.Pointer[string] // TLSFingerprint of the ClientHello, once one came
}

// Write writes p and, after the reply that ends the connection, closes it.
func (c *clientConn) Write(p []byte) (int, error) {
	c.greeted.Store(true)
	n, err := c.Conn.Write(p)
	if c.closeAfter.Load() {
		c.Close()
	}
	return n, err
}

// tlsRecordHandshake is the first byte of a TLS ClientHello record.
const tlsRecordHandshake = 0x16

// replyTLSOnPlain is the last reply to a client that starts a TLS handshake
// on the plain port: it is not speaking SMTP and would wait for a
// ServerHello as long as passgate waits for a command line.
const replyTLSOnPlain = "421 4.7.0 TLS handshake on a plain connection: use implicit TLS or STARTTLS\r\n"

// Read reads from the client. On the plain listener, a first byte that
// starts a TLS record ends the connection. A read that hit its deadline is
// remembered (see SetReadDeadline).
func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut.Store(true)
	}
	if c.sniffTLS && n > 0 {
		c.sniffTLS = false
		if p[0] == tlsRecordHandshake {
			c.log.Info("smtp client started TLS on a plain connection")
			c.writeFinal(c, replyTLSOnPlain)
			return 0, net.ErrClosed
		}
	}
	return n, err
}

// replyTooManyCommands ends a connection that sent MaxPreauthCommands lines
// without logging in (RFC 5321 §3.8: 421 when the server closes).
const replyTooManyCommands = "421 4.7.0 Too many commands before authentication\r\n"

// SetReadDeadline is called by go-smtp before each line it reads (command
// or SASL response: Server.ReadTimeout is never zero), also through the
// TLS layer. Before AUTH it counts the lines; the one after
// MaxPreauthCommands is not read: the client gets 421 and the connection
// is closed.
//
// Once a read has hit its deadline, the deadline is in the past: go-smtp
// goes back to reading a command after a SASL response timed out, which
// would give an idle client a second timeout; now its next read fails at
// once and it gets 421 4.4.2.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	if c.timedOut.Load() {
		t = time.Unix(1, 0)
	}
	if c.greeted.Load() && !c.authed.Load() && c.preauth.Add(1) > c.maxPreauth {
		if c.refused.CompareAndSwap(false, true) {
			c.log.Info("smtp too many commands before authentication", "limit", c.maxPreauth)
			if w := c.replyTo.Load(); w != nil {
				c.writeFinal(*w, replyTooManyCommands)
			}
			c.Close()
		}
		return net.ErrClosed
	}
	return c.Conn.SetReadDeadline(c.preauthDeadline(t))
}

// SetWriteDeadline is called by go-smtp before each reply and before the
// implicit-TLS handshake; before AUTH the deadline is capped at
// Limits.PreauthTimeout.
func (c *clientConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.preauthDeadline(t))
}

// preauthDeadline caps the deadline t at PreauthTimeout from now until
// AUTH succeeded, so that go-smtp's ReadTimeout and WriteTimeout (those of
// an authenticated session) do not keep an idle client that never logs in.
func (c *clientConn) preauthDeadline(t time.Time) time.Time {
	if c.preauthTimeout <= 0 || t.IsZero() || c.authed.Load() {
		return t
	}
	if p := time.Now().Add(c.preauthTimeout); p.Before(t) {
		return p
	}
	return t
}

// writeFinal writes a last reply through w (the connection, or the TLS
// layer over it) and closes the connection.
func (c *clientConn) writeFinal(w net.Conn, reply string) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	w.Write([]byte(reply))
	c.Close()
}

// setReplyTo records the connection replies are written to (c, or the TLS
// connection over it); nil while it is unknown: after STARTTLS, until the
// next EHLO starts a session that tells.
func (c *clientConn) setReplyTo(w net.Conn) {
	if w == nil {
		c.replyTo.Store(nil)
		return
	}
	c.replyTo.Store(&w)
}

// Close frees the connection's Limits.Conns slot, closes it once and forgets
// it. The slot is free before the client sees the end of the connection.
func (c *clientConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
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

// listener wraps accepted connections in clientConn and, with tlsConfig,
// in TLS (implicit TLS, RFC 8314 §3.3). A connection over Limits.Conns
// is answered 421 and closed by the Server; go-smtp never sees it.
type listener struct {
	net.Listener
	srv       *Server
	tlsConfig *tls.Config // nil: plain
}

func (l listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cc, admitted := l.srv.newClientConn(nc)
		if !admitted {
			l.srv.refuseConn(cc, l.tlsConfig)
			continue
		}
		if l.tlsConfig == nil {
			cc.sniffTLS = true
			cc.setReplyTo(cc)
			return cc, nil
		}
		tc := tls.Server(cc, l.tlsConfig)
		cc.setReplyTo(tc)
		return tc, nil
	}
}

// startTLSConfig is the TLS config go-smtp uses for STARTTLS: TLSConfig,
// noting on the client connection that replies now go through a TLS layer
// that the next session will name.
func (s *Server) startTLSConfig() *tls.Config {
	if s.TLSConfig == nil {
		return nil
	}
	cfg := s.TLSConfig.Clone()
	next := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if cc := clientConnOf(hello.Conn); cc != nil {
			cc.setReplyTo(nil)
			cc.noteHello(hello)
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
	}
	return cfg
}

// implicitTLSConfig is the TLS config of the implicit-TLS listener:
// TLSConfig, noting each client's TLS fingerprint. Made once per listener:
// its session tickets must resume on the next connection.
func (s *Server) implicitTLSConfig() *tls.Config {
	cfg := s.TLSConfig.Clone()
	next := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if cc := clientConnOf(hello.Conn); cc != nil {
			cc.noteHello(hello)
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
	}
	return cfg
}

// noteHello records the fingerprint of the client's ClientHello
// (first-use binding compares it).
func (c *clientConn) noteHello(hello *tls.ClientHelloInfo) {
	fp := proxy.TLSFingerprint(hello)
	c.tlsFP.Store(&fp)
}

// tlsFingerprint is the TLS fingerprint of the session's client, "" before
// TLS.
func (ss *session) tlsFingerprint() string {
	if ss.cc == nil {
		return ""
	}
	if fp := ss.cc.tlsFP.Load(); fp != nil {
		return *fp
	}
	return ""
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
