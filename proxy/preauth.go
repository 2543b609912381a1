package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// ErrDone ends a front-end connection without a further reply (LOGOUT,
// QUIT, a failed STARTTLS handshake, the end of a relay).
var ErrDone = errors.New("connection done")

// ErrSASLCanceled is a client's "*" answer to a SASL challenge (RFC 3501
// §6.2.2, RFC 5034 §4, RFC 5804 §2.1).
var ErrSASLCanceled = errors.New("authentication canceled")

// PreauthConn is the client side of one hand-written front-end connection
// (proxy/imap, proxy/pop3, proxy/sieve) before login, and what Shutdown and
// Close need of it afterwards. A front-end's conn embeds it and keeps its
// protocol's texts: the methods that answer the client take them as
// parameters.
//
// The conn goroutine owns the client connection until TakeOver hands it
// to the relay; the mutex guards the client (swapped by StartTLS), the
// upstream and the state that Interrupt and Close read from other
// goroutines.
type PreauthConn struct {
	name    string        // the protocol, prefixing log messages ("imap")
	log     *slog.Logger  // carries session and remote
	timeout time.Duration // Limits.PreauthTimeout: each read, write and handshake

	mu          sync.Mutex
	netConn     net.Conn // the client; a *tls.Conn after StartTLS
	up          net.Conn // the upstream, once relaying
	relaying    bool
	interrupted bool // Shutdown asked the pre-auth phase to end

	hellos *HelloWatch // nil: TLS fingerprints are not taken
	tlsFP  string      // the TLSFingerprint of the client's ClientHello
}

// WatchHellos makes the TLS handshakes of Open and StartTLS record the
// client's TLSFingerprint through w, which must serve the implicit-TLS
// connection's config (w.Config()). Call it before Open.
func (p *PreauthConn) WatchHellos(w *HelloWatch) { p.hellos = w }

// TLSFingerprint is the TLSFingerprint of the client's ClientHello, ""
// before a TLS handshake or without WatchHellos.
func (p *PreauthConn) TLSFingerprint() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tlsFP
}

func (p *PreauthConn) setTLSFingerprint(fp string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tlsFP = fp
}

// watch records the fingerprint of a ClientHello arriving on nc until
// stop is called.
func (p *PreauthConn) watch(nc net.Conn) (stop func()) {
	if p.hellos == nil {
		return func() {}
	}
	return p.hellos.Watch(nc, p.setTLSFingerprint)
}

// NewPreauthConn wraps the client nc of a front-end called name, whose
// reads, writes and TLS handshakes each get timeout.
func NewPreauthConn(nc net.Conn, name string, log *slog.Logger, timeout time.Duration) *PreauthConn {
	return &PreauthConn{name: name, log: log, timeout: timeout, netConn: nc}
}

// Client is the client connection (a *tls.Conn after StartTLS).
func (p *PreauthConn) Client() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.netConn
}

// IsInterrupted reports whether Shutdown asked the pre-auth phase to end.
func (p *PreauthConn) IsInterrupted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interrupted
}

func (p *PreauthConn) isRelaying() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relaying
}

// SetReadDeadline arms the deadline of the next command; after Interrupt
// the deadline is in the past so the read ends at once.
func (p *PreauthConn) SetReadDeadline() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := time.Now().Add(p.timeout)
	if p.interrupted {
		d = time.Unix(1, 0)
	}
	if err := p.netConn.SetReadDeadline(d); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

// Interrupt ends the pre-auth phase (Shutdown): a blocked read returns at
// once. A relayed session is left alone.
func (p *PreauthConn) Interrupt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interrupted = true
	if !p.relaying {
		p.netConn.SetReadDeadline(time.Unix(1, 0))
	}
}

// TakeOver marks the connection as relayed to up and returns the client
// connection with its deadlines cleared.
func (p *PreauthConn) TakeOver(up net.Conn) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.relaying = true
	p.up = up
	p.netConn.SetDeadline(time.Time{})
	return p.netConn
}

// Close closes the client and, when relaying, the upstream connection.
func (p *PreauthConn) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.netConn.Close()
	if p.up != nil {
		p.up.Close()
	}
}

// Handshake runs a TLS handshake within the pre-auth timeout.
func (p *PreauthConn) Handshake(ctx context.Context, tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	return nil
}

// Open starts a connection: it counts it in conns, finishes an implicit
// TLS handshake (a *tls.Conn client), and, if a connection limit refused
// it, logs which one and writes refuse. ok is false when the connection
// must end there; release (never nil) gives the count back.
func (p *PreauthConn) Open(ctx context.Context, conns *ConnLimiter, addr netip.Addr, refuse string) (release func(), ok bool) {
	release, limit := conns.Admit(addr)
	if limit != "" {
		release = func() {}
	}
	if tc, isTLS := p.Client().(*tls.Conn); isTLS {
		stop := p.watch(tc.NetConn())
		err := p.Handshake(ctx, tc)
		stop()
		if err != nil {
			p.log.Debug(p.name+" tls handshake failed", "err", err)
			return release, false
		}
	}
	if limit != "" {
		p.log.Info(p.name+" connection refused: too many connections", "limit", limit)
		p.Write(refuse)
		return release, false
	}
	return release, true
}

// StartTLS runs the server side of a TLS handshake on the client
// connection (STARTTLS, STLS) with cfg (with WatchHellos: the watch's
// config, which serves as cfg does) and, once it succeeded, makes the TLS
// connection the client. The caller resets its reader onto the result.
func (p *PreauthConn) StartTLS(ctx context.Context, cfg *tls.Config) (*tls.Conn, error) {
	raw := p.Client()
	if p.hellos != nil {
		cfg = p.hellos.Config()
	}
	tc := tls.Server(raw, cfg)
	stop := p.watch(raw)
	err := p.Handshake(ctx, tc)
	stop()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.netConn = tc
	p.mu.Unlock()
	return tc, nil
}

// Write sends lines, each followed by CRLF, with a write deadline.
func (p *PreauthConn) Write(lines ...string) error {
	n := 0
	for _, l := range lines {
		n += len(l) + 2
	}
	b := make([]byte, 0, n) // one allocation: what net.Conn.Write takes
	for _, l := range lines {
		b = append(append(b, l...), "\r\n"...)
	}
	nc := p.Client()
	if err := nc.SetWriteDeadline(time.Now().Add(p.timeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := nc.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// EndOnError says goodbye after a read or write error, if a goodbye is
// still possible: shutdownLine when a read ended because of Shutdown,
// idleLine when the client was idle too long. ErrDone, EOF and a closed
// connection end it silently.
func (p *PreauthConn) EndOnError(err error, shutdownLine, idleLine string) {
	switch {
	case errors.Is(err, ErrDone), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		if p.IsInterrupted() {
			p.Write(shutdownLine)
		} else {
			p.Write(idleLine)
		}
	default:
		p.log.Debug(p.name+" connection error", "err", err)
	}
}

// RecoverPanic, deferred by the conn goroutine, turns a panic into line
// to a client not yet relayed. Only runtime errors are logged with their
// text: other panic values could carry data.
func (p *PreauthConn) RecoverPanic(line string) {
	v := recover()
	if v == nil {
		return
	}
	p.log.Error(p.name+" connection panicked", "panic", PanicText(v), "stack", string(debug.Stack()))
	if !p.isRelaying() {
		p.Write(line)
	}
}

// SASLStep writes challengeLine (the protocol's continuation request) and
// reads the client's response with read, under the command's deadline. A
// response "*" cancels (ErrSASLCanceled); an empty one is empty; anything
// else is decoded as by DecodeSASL (ErrBadBase64).
func (p *PreauthConn) SASLStep(challengeLine string, read func() (string, error)) ([]byte, error) {
	if err := p.Write(challengeLine); err != nil {
		return nil, err
	}
	resp, err := read()
	if err != nil {
		return nil, err
	}
	switch resp {
	case "*":
		return nil, ErrSASLCanceled
	case "":
		return nil, nil
	}
	return DecodeSASL(resp)
}

// SASLReply is a front-end's reply to err from SASLStep or DecodeSASL:
// canceled for ErrSASLCanceled, badBase64 for ErrBadBase64, err itself
// otherwise.
func SASLReply(err, canceled, badBase64 error) error {
	switch {
	case errors.Is(err, ErrSASLCanceled):
		return canceled
	case errors.Is(err, ErrBadBase64):
		return badBase64
	}
	return err
}
