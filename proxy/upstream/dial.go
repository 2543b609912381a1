package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// link is one connection to the upstream while passgate logs in on it, for
// every protocol: the one place that dials, runs TLS and holds the login
// deadline.
//
// The login deadline is LoginTimeout from the connect, or ctx's deadline if
// earlier. Every deadline set on the connection is capped at it, those that
// go-smtp sets per command included, and ctx ending moves it to the past,
// which interrupts whatever read or write runs. release lifts it once the
// login is done.
type link struct {
	ctx  context.Context
	raw  *boundConn  // the TCP connection
	conn net.Conn    // what the protocol speaks on: raw, or TLS over it
	tls  *tls.Config // nil with TLSNone
	stop func() bool // unties ctx
	// greeted (IMAP) is the dialogue of a pooled link: greeting read,
	// STARTTLS done. nil: the protocol starts from the greeting.
	greeted *wire
}

// connect is connectFor without a client: a check or probe of passgate's
// own (a PROXY header, if configured, says LOCAL).
func (c *Config) connect(ctx context.Context) (*link, error) {
	return c.connectFor(ctx, netip.AddrPort{})
}

// connectFor dials the upstream within DialTimeout, arms the login
// deadline, sends the PROXY header naming client if SendProxy says so
// and, with implicit TLS, runs the handshake.
func (c *Config) connectFor(ctx context.Context, client netip.AddrPort) (*link, error) {
	conf, err := c.TLSClientConfig()
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w: %w", ErrUnavailable, err)
	}
	d := net.Dialer{Timeout: c.dialTimeout()}
	tcp, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream dial: %w: %w", ErrUnavailable, err)
	}
	raw := &boundConn{Conn: tcp}
	raw.limitTo(c.loginDeadline(ctx))
	l := &link{ctx: ctx, raw: raw, conn: raw, tls: conf}
	l.stop = context.AfterFunc(ctx, func() { raw.limitTo(time.Unix(1, 0)) })
	if err := c.sendProxy(raw, client); err != nil {
		l.close()
		return nil, l.unavailable("proxy header", err)
	}
	if c.tlsMode() == TLSImplicit {
		if err := l.handshake(); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

// loginDeadline is LoginTimeout from now, or ctx's deadline if earlier.
func (c *Config) loginDeadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(c.loginTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// handshake runs the TLS client handshake (at once with implicit TLS, after
// the protocol's STARTTLS otherwise) and speaks TLS from then on.
func (l *link) handshake() error {
	tc := tls.Client(l.conn, l.tls)
	if err := tc.HandshakeContext(l.ctx); err != nil {
		return l.unavailable("tls handshake", tlsHint(err))
	}
	l.conn = tc
	return nil
}

// release lifts the login deadline and unties ctx, for the caller to keep
// conn: without TLS it becomes the TCP connection itself (so that the
// splice can use splice(2) and half-close it). It fails if ctx ended
// meanwhile.
func (l *link) release() error {
	if !l.stop() {
		return l.unavailable("login", l.ctx.Err())
	}
	if err := l.raw.limitTo(time.Time{}); err != nil {
		return l.unavailable("login", err)
	}
	if l.conn == net.Conn(l.raw) {
		l.conn = l.raw.Conn
	}
	return nil
}

// close ends the link and closes the connection.
func (l *link) close() {
	l.stop()
	l.raw.Close()
}

// unavailable wraps an I/O failure, naming ctx's error if ctx ended it.
func (l *link) unavailable(op string, err error) error {
	if cerr := l.ctx.Err(); cerr != nil {
		err = cerr
	}
	return fmt.Errorf("upstream %s: %w: %w", op, ErrUnavailable, err)
}

// boundConn caps every deadline set on it at limit (zero: no cap).
type boundConn struct {
	net.Conn
	mu    sync.Mutex // held across each Set*Deadline, so limitTo is never undone
	limit time.Time
}

// limitTo sets the cap and the deadline both to t.
func (b *boundConn) limitTo(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = t
	return b.Conn.SetDeadline(t)
}

func (b *boundConn) SetDeadline(t time.Time) error { return b.set(t, b.Conn.SetDeadline) }

func (b *boundConn) SetReadDeadline(t time.Time) error { return b.set(t, b.Conn.SetReadDeadline) }

func (b *boundConn) SetWriteDeadline(t time.Time) error { return b.set(t, b.Conn.SetWriteDeadline) }

func (b *boundConn) set(t time.Time, set func(time.Time) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.limit.IsZero() && (t.IsZero() || t.After(b.limit)) {
		t = b.limit
	}
	return set(t)
}

// tlsHint adds to a failed TLS handshake's error what an operator most
// often has to fix: an upstream certificate from a private CA needs ca_file
// (in each upstream block that uses it).
func tlsHint(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%w (a certificate from a private CA needs ca_file in this upstream block; a name other than the address's host needs server_name)", err)
	}
	return err
}
