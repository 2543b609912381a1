package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// IMAP is one IMAP upstream. Its fields are read-only once in use; Login and
// Check may be called concurrently.
type IMAP struct {
	Address string  // host:port
	TLS     TLSMode // "" = TLSNone
	// TLSConfig is used when TLS != none; nil means a default config with
	// ServerName = host of Address (also filled in when ServerName is empty).
	TLSConfig    *tls.Config
	Mode         Mode // "" = ModeMaster
	MasterUser   string
	MasterSecret string
	Separator    string // login-master; "" = "*"
	// SendID sends ID ("x-originating-ip" ip "x-originating-port" port
	// ["x-session-id" id]) before login (RFC 2971); Dovecot honours it only
	// from login_trusted_networks. It is skipped if the upstream's known
	// capabilities lack ID.
	SendID       bool
	DialTimeout  time.Duration // 0 = 10s
	LoginTimeout time.Duration // 0 = 30s: deadline for everything from greeting to tagged OK
	Logger       *slog.Logger  // nil = no logs
}

func (u *IMAP) dialTimeout() time.Duration {
	if u.DialTimeout > 0 {
		return u.DialTimeout
	}
	return 10 * time.Second
}

func (u *IMAP) loginTimeout() time.Duration {
	if u.LoginTimeout > 0 {
		return u.LoginTimeout
	}
	return 30 * time.Second
}

func (u *IMAP) logger() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Login dials the upstream and logs in as l.Username; the returned
// connection is positioned after the upstream's tagged OK and belongs to the
// caller. Errors wrap ErrUnavailable, or are a *RefusedError.
func (u *IMAP) Login(ctx context.Context, l Login) (*Conn, error) {
	if err := u.checkUsername(l.Username); err != nil {
		return nil, err
	}
	start := time.Now()
	w, err := u.connect(ctx)
	if err != nil {
		return nil, err
	}
	c, err := u.login(w, l)
	if err != nil {
		w.close()
		u.logger().Debug("upstream login failed", "upstream", u.Address, "user", l.Username,
			"client", l.ClientID, "mode", u.mode(), "err", err)
		return nil, err
	}
	u.logger().Debug("upstream login", "upstream", u.Address, "user", l.Username,
		"client", l.ClientID, "mode", u.mode(), "duration", time.Since(start))
	return c, nil
}

// login runs the dialogue after the greeting: ID, the login itself, and
// CAPABILITY if the OK did not carry it.
func (u *IMAP) login(w *wire, l Login) (*Conn, error) {
	if u.SendID && (w.caps == nil || w.hasCap("ID")) {
		if err := sendID(w, l); err != nil {
			return nil, err
		}
	}
	ok, err := u.authenticate(w, l)
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: w.conn, Text: w.withhold(ok.text)}
	if w.caps == nil {
		if c.Buffered, err = postLoginCapability(w); err != nil {
			return nil, err
		}
	}
	c.Capability = strings.Join(w.caps, " ")
	if n := w.br.Buffered(); n > 0 {
		rest, _ := w.br.Peek(n)
		c.Buffered = append(c.Buffered, rest...)
	}
	if err := w.release(); err != nil {
		return nil, err
	}
	return c, nil
}

// Check dials the upstream, reads its greeting (after TLS as configured)
// and logs out: a health check that needs no credentials.
func (u *IMAP) Check(ctx context.Context) error {
	_, err := u.Capabilities(ctx)
	return err
}

// Capabilities dials the upstream, reads its pre-login capabilities (from
// the greeting, else with CAPABILITY; with STARTTLS, those announced over
// TLS) and logs out. It needs no credentials; DialTimeout and LoginTimeout
// bound it as they bound a login.
func (u *IMAP) Capabilities(ctx context.Context) ([]string, error) {
	w, err := u.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if w.caps == nil {
		if err := preLoginCapability(w); err != nil {
			return nil, err
		}
	}
	caps := w.caps
	tag := w.nextTag()
	r, err := w.send("logout", tag, []byte(tag+" LOGOUT\r\n"))
	if err != nil {
		return nil, err
	}
	if r.status != "OK" {
		return nil, w.garbage("logout", r)
	}
	return caps, nil
}

// connect dials, sets up TLS as configured and reads the greeting. The
// returned wire holds the login deadline.
func (u *IMAP) connect(ctx context.Context) (*wire, error) {
	tlsConf, err := u.tlsConfig()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: u.dialTimeout()}
	conn, err := d.DialContext(ctx, "tcp", u.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream dial: %w: %w", ErrUnavailable, err)
	}
	w := newWire(ctx, conn, u.loginTimeout())
	if err := u.secure(w, tlsConf); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// secure runs the TLS mode and reads the greeting.
func (u *IMAP) secure(w *wire, conf *tls.Config) error {
	switch u.TLS {
	case TLSNone, "":
		return greeting(w)
	case TLSImplicit:
		if err := handshake(w, conf); err != nil {
			return err
		}
		return greeting(w)
	case TLSStartTLS:
		if err := greeting(w); err != nil {
			return err
		}
		return startTLS(w, conf)
	}
	return fmt.Errorf("upstream: %w: unknown TLS mode %q", ErrUnavailable, u.TLS)
}

// tlsConfig returns the config to use, with ServerName filled in.
func (u *IMAP) tlsConfig() (*tls.Config, error) {
	if u.TLS == TLSNone || u.TLS == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(u.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w: %w", ErrUnavailable, err)
	}
	if u.TLSConfig == nil {
		return &tls.Config{ServerName: host}, nil
	}
	if u.TLSConfig.ServerName == "" && !u.TLSConfig.InsecureSkipVerify {
		c := u.TLSConfig.Clone()
		c.ServerName = host
		return c, nil
	}
	return u.TLSConfig, nil
}

// greeting reads the server greeting: it must be OK (RFC 3501 §7.1.1).
// PREAUTH would log us in as someone already, BYE refuses us.
func greeting(w *wire) error {
	r, err := w.read("greeting")
	if err != nil {
		return err
	}
	if r.tag != "*" || r.status == "" {
		return w.garbage("greeting", r)
	}
	switch r.status {
	case "OK":
		if caps, ok := r.capabilities(); ok {
			w.caps = caps
		}
		return nil
	case "BYE":
		return fmt.Errorf("upstream greeting: %w: BYE %s", ErrUnavailable, w.withhold(r.text))
	}
	return w.garbage("greeting", r)
}

// startTLS upgrades the connection (RFC 3501 §6.2.1) and forgets the
// capabilities learnt in plaintext.
func startTLS(w *wire, conf *tls.Config) error {
	tag := w.nextTag()
	r, err := w.send("starttls", tag, []byte(tag+" STARTTLS\r\n"))
	if err != nil {
		return err
	}
	if r.status != "OK" {
		return fmt.Errorf("upstream starttls: %w: refused: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
	}
	if w.br.Buffered() > 0 {
		return fmt.Errorf("upstream starttls: %w: plaintext bytes after the STARTTLS response (injection attempt?)", ErrUnavailable)
	}
	w.caps = nil
	return handshake(w, conf)
}

// handshake runs the TLS client handshake and puts the TLS connection in
// place of the plain one.
func handshake(w *wire, conf *tls.Config) error {
	tc := tls.Client(w.conn, conf)
	if err := tc.HandshakeContext(w.ctx); err != nil {
		return w.unavailable("tls", err)
	}
	w.conn = tc
	w.br.Reset(tc)
	return nil
}

// postLoginCapability asks for the capabilities after login (the tagged OK
// had none). Untagged responses other than CAPABILITY are the client's:
// their bytes are returned to be forwarded.
func postLoginCapability(w *wire) ([]byte, error) {
	tag := w.nextTag()
	if _, err := w.conn.Write([]byte(tag + " CAPABILITY\r\n")); err != nil {
		return nil, w.unavailable("capability", err)
	}
	var forward []byte
	for {
		r, err := w.read("capability")
		if err != nil {
			return nil, err
		}
		if caps, ok := r.capabilities(); ok {
			w.caps = caps
		}
		switch {
		case r.tag == "*" && r.kind == "CAPABILITY":
			continue
		case r.tag == "*":
			forward = append(forward, r.raw...)
		case r.tag == tag && r.status == "OK":
			if w.caps == nil {
				w.caps = []string{}
			}
			return forward, nil
		case r.tag == tag:
			return nil, fmt.Errorf("upstream capability: %w: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
		default:
			return nil, w.garbage("capability", r)
		}
	}
}
