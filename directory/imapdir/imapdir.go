// Package imapdir is the directory kind for mail servers with nothing else
// to ask: a primary password is verified by logging in to the upstream IMAP
// server as the user and closing the connection at once. The login is
// passgate's one upstream login (proxy/upstream, pass-through mode:
// AUTHENTICATE PLAIN, or LOGIN without AUTH=PLAIN), so TLS, the ID that
// forwards the client's address, and the treatment of secrets in errors are
// those of the proxy's own logins.
//
// What it cannot do, by construction:
//   - Lookup: IMAP has no way to ask whether an account exists without its
//     password; Lookup returns directory.ErrUnsupported, so callers cannot
//     check an app-password login's account state against the directory.
//   - State: no MFA, admin or disabled flags (the Entry's are false); a
//     disabled account is refused like a wrong password.
//   - Unknown users: IMAP answers them like a wrong password, so
//     Authenticate reports both as ErrBadPassword, at the cost of one login
//     each.
//
// Every attempt is a real login, and the server counts its failures:
// Dovecot delays every later login from the failing address (2 s doubling
// to 15 s). Unless ForwardClientIP is set (and the server trusts passgate:
// Dovecot's login_trusted_networks), that address is passgate's own, and
// one client's wrong passwords slow everyone's logins.
package imapdir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/proxy/upstream"
)

// Config configures an IMAP directory.
type Config struct {
	// Addr is the server's host:port. Required.
	Addr string
	// Security is upstream.TLSImplicit, upstream.TLSStartTLS (default)
	// or upstream.TLSNone, which is allowed only to a loopback address.
	Security upstream.TLSMode
	// TLS is the client TLS configuration. Nil: the system roots and the
	// host of Addr as the server name.
	TLS *tls.Config
	// ForwardClientIP sends the client's address (directory.WithClientIP)
	// as IMAP ID x-originating-ip, so that the server's logs and failure
	// penalties name the client, not passgate.
	ForwardClientIP bool
	// Timeout bounds the whole login (connect, TLS, greeting, login).
	// Default 10s.
	Timeout time.Duration
	// Names normalises logins before they are sent.
	Names directory.Names
}

// DefaultTimeout is the default of Config.Timeout.
const DefaultTimeout = 10 * time.Second

// Directory verifies passwords by IMAP logins. It keeps no connections.
type Directory struct {
	cfg      Config
	up       *upstream.IMAP
	requests atomic.Int64
}

var _ directory.Directory = (*Directory)(nil)

// New checks cfg and applies its defaults.
func New(cfg Config) (*Directory, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap directory: addr %q: want host:port", cfg.Addr)
	}
	if err := cfg.Names.Validate(); err != nil {
		return nil, fmt.Errorf("imap directory: %w", err)
	}
	switch cfg.Security {
	case "":
		cfg.Security = upstream.TLSStartTLS
	case upstream.TLSImplicit, upstream.TLSStartTLS:
	case upstream.TLSNone:
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("imap directory: security none to %s would send passwords in clear (only loopback addresses may)", host)
		}
	default:
		return nil, fmt.Errorf("imap directory: security %q: want tls, starttls or none", cfg.Security)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Directory{cfg: cfg, up: &upstream.IMAP{
		Address: cfg.Addr, TLS: cfg.Security, TLSConfig: cfg.TLS,
		Mode: upstream.ModePassthrough, SendID: cfg.ForwardClientIP,
		DialTimeout: cfg.Timeout, LoginTimeout: cfg.Timeout,
	}}, nil
}

// Requests returns how many logins the directory has attempted.
func (d *Directory) Requests() int64 { return d.requests.Load() }

// Lookup implements directory.Directory: IMAP cannot look users up.
func (d *Directory) Lookup(ctx context.Context, username string) (directory.Entry, error) {
	return directory.Entry{}, fmt.Errorf("imap lookup: %w", directory.ErrUnsupported)
}

// Authenticate implements directory.Directory by logging in as the user.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	name, err := d.cfg.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("imap authenticate: %w", err)
	}
	if password == "" {
		return directory.Entry{}, fmt.Errorf("imap authenticate: %w: empty password", directory.ErrBadPassword)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	d.requests.Add(1)
	login := upstream.Login{Username: name, Password: password}
	if ip := directory.ClientIP(ctx); ip.IsValid() {
		login.ClientIP = netip.AddrPortFrom(ip, 0)
	}
	c, err := d.up.Login(ctx, login)
	var refused *upstream.RefusedError
	switch {
	case err == nil:
		c.Write([]byte("z LOGOUT\r\n")) // best effort; the server's reply is not awaited
		c.Close()
		return directory.Entry{Username: name}, nil
	case errors.As(err, &refused) && refused.Code == "EXPIRED":
		return directory.Entry{}, fmt.Errorf("imap authenticate: %w: password expired", directory.ErrBadPassword)
	case errors.As(err, &refused):
		// AUTHENTICATIONFAILED, AUTHORIZATIONFAILED, no code: the
		// server will not say whether the user exists or is disabled.
		return directory.Entry{}, fmt.Errorf("imap authenticate: %w", directory.ErrBadPassword)
	}
	return directory.Entry{}, fmt.Errorf("imap authenticate: %w: %w", directory.ErrUnavailable, err)
}
