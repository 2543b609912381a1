package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Upstream login modes.
const (
	// ModeMaster logs in with SASL PLAIN, authzid = user, authcid =
	// MasterUser (Dovecot master users); with AUTH LOGIN as
	// user<Separator>MasterUser when the upstream lacks PLAIN.
	ModeMaster = "master"
	// ModeLoginMaster logs in with AUTH LOGIN as user<Separator>MasterUser
	// (Dovecot auth_master_user_separator); with PLAIN, no authzid, when the
	// upstream lacks LOGIN.
	ModeLoginMaster = "login-master"
	// ModeXCLIENT sends Postfix's XCLIENT LOGIN= ADDR= NAME= and no AUTH;
	// passgate's address must be in smtpd_authorized_xclient_hosts.
	ModeXCLIENT = "xclient"
	// ModePassthrough logs in with the client's own username and secret.
	ModePassthrough = "passthrough"
)

// Upstream TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
)

// Upstream is the submission server messages are relayed to, and how
// passgate logs in to it as the user.
type Upstream struct {
	// Address is host:port. Required.
	Address string
	// TLS is "none", "starttls" (RFC 3207) or "tls" (implicit, RFC 8314).
	// If empty, "none".
	TLS string
	// TLSConfig is used for TLS and STARTTLS. If nil, a default config;
	// an empty ServerName is taken from the host of Address.
	TLSConfig *tls.Config
	// Mode is ModeMaster, ModeLoginMaster, ModeXCLIENT or ModePassthrough.
	// Required.
	Mode string
	// MasterUser and MasterSecret are the master credentials of the master
	// and login-master modes.
	MasterUser, MasterSecret string
	// Separator joins user and master user in login-master mode. If empty,
	// "*".
	Separator string
	// LocalName is the EHLO name. If empty, "passgate".
	LocalName string
	// DialTimeout bounds connecting and logging in: TCP, TLS, greeting,
	// EHLO, STARTTLS, XCLIENT and AUTH. If zero, 10s.
	DialTimeout time.Duration
	// CommandTimeout bounds each later command, including each write of a
	// message body and the reply to its final dot. If zero, 5m (RFC 5321
	// §4.5.3.2).
	CommandTimeout time.Duration
}

func (u *Upstream) separator() string {
	if u.Separator == "" {
		return "*"
	}
	return u.Separator
}

func (u *Upstream) localName() string {
	if u.LocalName == "" {
		return "passgate"
	}
	return u.LocalName
}

func (u *Upstream) dialTimeout() time.Duration {
	if u.DialTimeout <= 0 {
		return 10 * time.Second
	}
	return u.DialTimeout
}

func (u *Upstream) commandTimeout() time.Duration {
	if u.CommandTimeout <= 0 {
		return 5 * time.Minute
	}
	return u.CommandTimeout
}

func (u *Upstream) tlsMode() string {
	if u.TLS == "" {
		return TLSNone
	}
	return u.TLS
}

// tlsConfig returns the TLS config with ServerName filled in.
func (u *Upstream) tlsConfig() *tls.Config {
	cfg := u.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(u.Address)
	}
	return cfg
}

// validate reports a misconfiguration, naming what is wrong.
func (u *Upstream) validate() error {
	if u == nil {
		return errors.New("smtp upstream: not configured")
	}
	if _, _, err := net.SplitHostPort(u.Address); err != nil {
		return fmt.Errorf("smtp upstream: address %q: %w", u.Address, err)
	}
	switch u.tlsMode() {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("smtp upstream: tls %q: want none, starttls or tls", u.TLS)
	}
	switch u.Mode {
	case ModeMaster, ModeLoginMaster:
		if u.MasterUser == "" || u.MasterSecret == "" {
			return fmt.Errorf("smtp upstream: mode %s needs a master user and secret", u.Mode)
		}
	case ModeXCLIENT, ModePassthrough:
	default:
		return fmt.Errorf("smtp upstream: mode %q: want master, login-master, xclient or passthrough", u.Mode)
	}
	return nil
}

// identity is who the upstream session logs in as.
type identity struct {
	username string
	secret   string // passthrough mode only
	remote   netip.Addr
}

// upConn is one upstream connection, logged in.
type upConn struct {
	c   *gosmtp.Client
	raw net.Conn // the TCP connection under any TLS: deadlines and abort
	// stop unties the connection from the session's context.
	stop func() bool
}

// abort closes the connection at once, without QUIT: an unfinished message
// is discarded by the upstream.
func (up *upConn) abort() { up.raw.Close() }

// quit ends the session politely, waiting at most timeout for the reply.
func (up *upConn) quit(timeout time.Duration) {
	up.c.CommandTimeout = timeout
	_ = up.c.Quit()
	up.abort()
}

// has reports whether the upstream advertised the EHLO keyword ext.
func (up *upConn) has(ext string) bool {
	ok, _ := up.c.Extension(ext)
	return ok
}

// connect dials the upstream and logs in as id. ctx bounds the whole setup
// (with DialTimeout); the returned connection is no longer tied to ctx.
func (u *Upstream) connect(ctx context.Context, id identity) (*upConn, error) {
	if err := u.checkUsername(id.username); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.dialTimeout())
	defer cancel()
	raw, conn, err := u.dial(ctx)
	if err != nil {
		return nil, err
	}
	// Cancelling ctx aborts whatever step is running.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	up, err := u.open(ctx, raw, conn, id)
	if !stop() && err == nil {
		err = fmt.Errorf("upstream login: %w", ctx.Err())
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return up, nil
}

// open runs greeting, STARTTLS, EHLO and the login of the configured mode.
func (u *Upstream) open(ctx context.Context, raw, conn net.Conn, id identity) (*upConn, error) {
	var c *gosmtp.Client
	var err error
	if u.Mode == ModeXCLIENT {
		c, err = u.xclient(ctx, conn, id)
	} else {
		c, err = u.hello(conn)
	}
	if err != nil {
		return nil, err
	}
	if u.Mode != ModeXCLIENT {
		if err := u.login(c, id); err != nil {
			return nil, fmt.Errorf("upstream login: %w", err)
		}
	}
	return &upConn{c: c, raw: raw, stop: func() bool { return false }}, nil
}

// dial opens the TCP connection and, for implicit TLS, runs the handshake.
// It returns the raw TCP connection and the one to speak SMTP on.
func (u *Upstream) dial(ctx context.Context) (raw, conn net.Conn, err error) {
	d := net.Dialer{}
	raw, err = d.DialContext(ctx, "tcp", u.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream dial: %w", err)
	}
	if u.tlsMode() != TLSImplicit {
		return raw, raw, nil
	}
	tc := tls.Client(raw, u.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("upstream tls: %w", err)
	}
	return raw, tc, nil
}

// hello reads the greeting, runs STARTTLS if configured, and says EHLO.
func (u *Upstream) hello(conn net.Conn) (*gosmtp.Client, error) {
	var c *gosmtp.Client
	if u.tlsMode() == TLSStartTLS {
		// go-smtp says EHLO localhost before STARTTLS, LocalName after.
		var err error
		if c, err = gosmtp.NewClientStartTLS(conn, u.tlsConfig()); err != nil {
			return nil, fmt.Errorf("upstream starttls: %w", err)
		}
	} else {
		c = gosmtp.NewClient(conn)
	}
	u.setTimeouts(c)
	if err := c.Hello(u.localName()); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream ehlo: %w", err)
	}
	return c, nil
}

func (u *Upstream) setTimeouts(c *gosmtp.Client) {
	c.CommandTimeout = u.commandTimeout()
	c.SubmissionTimeout = u.commandTimeout()
}

// capabilities is what passgate advertises on the upstream's behalf.
type capabilities struct {
	size     int64 // 0: no SIZE or SIZE without a limit
	dsn      bool
	smtputf8 bool
}

// probe connects without logging in and reads the upstream's EHLO keywords.
func (u *Upstream) probe(ctx context.Context) (capabilities, error) {
	if err := u.validate(); err != nil {
		return capabilities{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.dialTimeout())
	defer cancel()
	raw, conn, err := u.dial(ctx)
	if err != nil {
		return capabilities{}, err
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	c, err := u.hello(conn)
	if err != nil {
		return capabilities{}, err
	}
	var caps capabilities
	if ok, v := c.Extension("SIZE"); ok {
		caps.size, _ = strconv.ParseInt(v, 10, 64)
	}
	caps.dsn, _ = c.Extension("DSN")
	caps.smtputf8, _ = c.Extension("SMTPUTF8")
	err = u.checkLoginPossible(c)
	c.CommandTimeout = time.Second
	_ = c.Quit()
	return caps, err
}

// checkLoginPossible reports whether the upstream offers what the mode needs.
func (u *Upstream) checkLoginPossible(c *gosmtp.Client) error {
	if u.Mode == ModeXCLIENT {
		if _, err := xclientAttrs(c.Extension("XCLIENT")); err != nil {
			return err
		}
		return nil
	}
	if !c.SupportsAuth("PLAIN") && !c.SupportsAuth("LOGIN") {
		return errors.New("upstream offers neither AUTH PLAIN nor AUTH LOGIN (STARTTLS first?)")
	}
	return nil
}

// Check connects to the upstream (TLS, EHLO), checks that it offers what the
// login mode needs (AUTH PLAIN or LOGIN; XCLIENT with LOGIN and ADDR) and
// says QUIT. It does not log in.
func (u *Upstream) Check(ctx context.Context) error {
	_, err := u.probe(ctx)
	return err
}
