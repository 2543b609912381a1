package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy/upstream/oauthsasl"
)

// SMTP is a submission upstream (RFC 6409): a Config whose methods log in
// with AUTH (RFC 4954) or Postfix's XCLIENT and hand back go-smtp's client
// for the relay (Config.SMTP). Login, Probe and Check may be called
// concurrently.
type SMTP Config

func (u *SMTP) config() *Config { return (*Config)(u) }

// LogValue names the upstream by its address only.
func (u SMTP) LogValue() slog.Value { return Config(u).LogValue() }

// NeedsClientSecret reports whether Login uses Login.Password
// (ModePassthrough); otherwise the front end must not keep it.
func (u *SMTP) NeedsClientSecret() bool {
	return u.config().authenticator().needsClientSecret()
}

// Validate reports what is wrong with the Config for SMTP: each problem is
// a *FieldError.
func (u *SMTP) Validate() error { return u.config().validate(smtpProtocol) }

// SMTPConn is a submission session logged in as the user, no longer tied
// to the context of its login. The caller owns it and ends it with Quit or
// Abort.
type SMTPConn struct {
	// Client speaks MAIL, RCPT, DATA and RSET; CommandTimeout bounds each
	// command and the reply to the final dot.
	Client  *gosmtp.Client
	raw     net.Conn // the TCP connection under any TLS: write deadlines and abort
	timeout time.Duration
}

// Has reports whether the upstream advertised the EHLO keyword ext.
func (c *SMTPConn) Has(ext string) bool {
	ok, _ := c.Client.Extension(ext)
	return ok
}

// ExtendWriteDeadline gives the next write CommandTimeout: call it before
// each write of a message body, which go-smtp does not bound.
func (c *SMTPConn) ExtendWriteDeadline() {
	c.raw.SetWriteDeadline(time.Now().Add(c.timeout))
}

// Abort closes the connection at once, without QUIT: an unfinished message
// is discarded by the upstream (RFC 5321 §4.1.1.4).
func (c *SMTPConn) Abort() { c.raw.Close() }

// Quit ends the session politely, waiting at most timeout for the reply.
func (c *SMTPConn) Quit(timeout time.Duration) {
	c.Client.CommandTimeout = timeout
	_ = c.Client.Quit()
	c.Abort()
}

// Login dials the upstream and logs in as l.Username by the mode: AUTH with
// the first mechanism of the mode's credential the upstream offers, or
// XCLIENT. Errors are a *RefusedError when refused before dialling.
func (u *SMTP) Login(ctx context.Context, l Login) (*SMTPConn, error) {
	var c *gosmtp.Client
	k, err := u.config().login(ctx, smtpProtocol, l, func(k *link, cred credential) (err error) {
		c, err = u.open(k, l, cred)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SMTPConn{Client: c, raw: k.raw, timeout: u.config().commandTimeout()}, nil
}

// open runs greeting, STARTTLS, EHLO and the login of the mode.
func (u *SMTP) open(k *link, l Login, cred credential) (*gosmtp.Client, error) {
	if u.config().mode() == ModeXCLIENT {
		return u.xclient(k, l)
	}
	c, err := u.hello(k)
	if err != nil {
		return nil, err
	}
	m, ok := cred.choose(c.SupportsAuth)
	if !ok {
		return nil, fmt.Errorf("upstream login: the upstream offers neither AUTH %s", cred.names())
	}
	sc := m.saslClient()
	if err := c.Auth(&fitLine{Client: sc}); err != nil {
		if oc, ok := sc.(*oauthsasl.Client); ok {
			return nil, smtpOAuthRefusal(oc, err)
		}
		var se *gosmtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return nil, fmt.Errorf("upstream login: %w", &RefusedError{Code: strconv.Itoa(se.Code), Text: se.Message})
		}
		return nil, fmt.Errorf("upstream login: %w", err)
	}
	return c, nil
}

// smtpOAuthRefusal judges a failed AUTH XOAUTH2 or OAUTHBEARER: a 4xx
// reply (RFC 4954 §6: 454 4.7.0) or no reply is the upstream's trouble, a
// 5xx is judged by the error challenge (oauthRefusal).
func smtpOAuthRefusal(sc *oauthsasl.Client, err error) error {
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code < 500 {
		return fmt.Errorf("upstream login: %w: %w", ErrUnavailable, err)
	}
	return oauthRefusal(sc, strconv.Itoa(se.Code), se.Message)
}

// hello reads the greeting, runs STARTTLS if configured, and says EHLO.
func (u *SMTP) hello(k *link) (*gosmtp.Client, error) {
	var c *gosmtp.Client
	if u.config().tlsMode() == TLSStartTLS {
		// go-smtp says EHLO localhost before STARTTLS, LocalName after.
		var err error
		if c, err = gosmtp.NewClientStartTLS(k.conn, k.tls); err != nil {
			return nil, fmt.Errorf("upstream starttls: %w", err)
		}
	} else {
		c = gosmtp.NewClient(k.conn)
	}
	u.setTimeouts(c)
	if err := c.Hello(u.config().localName()); err != nil {
		// go-smtp runs the STARTTLS handshake lazily, on this EHLO.
		if st, ok := c.TLSConnectionState(); ok && !st.HandshakeComplete {
			return nil, k.unavailable("tls handshake", tlsHint(err))
		}
		return nil, fmt.Errorf("upstream ehlo: %w", err)
	}
	return c, nil
}

// setTimeouts bounds each command of c; during the login the link caps
// them at the login deadline.
func (u *SMTP) setTimeouts(c *gosmtp.Client) {
	c.CommandTimeout = u.config().commandTimeout()
	c.SubmissionTimeout = c.CommandTimeout
}

// SMTPFeatures is what the upstream's EHLO offers that a front end
// advertises on its behalf.
type SMTPFeatures struct {
	MaxSize  int64 // SIZE (RFC 1870); 0: no SIZE, or SIZE without a limit
	DSN      bool  // RFC 3461
	SMTPUTF8 bool  // RFC 6531
}

// Probe connects without logging in (TLS, EHLO), reads the upstream's
// features, checks that it offers what the login mode needs (AUTH PLAIN or
// LOGIN; XCLIENT with LOGIN and ADDR) and says QUIT.
func (u *SMTP) Probe(ctx context.Context) (SMTPFeatures, error) {
	if err := u.config().usable(smtpProtocol); err != nil {
		return SMTPFeatures{}, err
	}
	k, err := u.config().connect(ctx)
	if err != nil {
		return SMTPFeatures{}, err
	}
	defer k.close()
	c, err := u.hello(k)
	if err != nil {
		return SMTPFeatures{}, err
	}
	var f SMTPFeatures
	if ok, v := c.Extension("SIZE"); ok {
		f.MaxSize, _ = strconv.ParseInt(v, 10, 64)
	}
	f.DSN, _ = c.Extension("DSN")
	f.SMTPUTF8, _ = c.Extension("SMTPUTF8")
	err = u.checkLoginPossible(c)
	c.CommandTimeout = time.Second
	_ = c.Quit()
	return f, err
}

// checkLoginPossible reports whether the upstream offers what the mode needs.
func (u *SMTP) checkLoginPossible(c *gosmtp.Client) error {
	if u.config().mode() == ModeXCLIENT {
		_, err := xclientAttrs(c.Extension("XCLIENT"))
		return err
	}
	if m := u.config().mode(); m.NeedsTokens() {
		if mech := u.config().oauthMode().mech; !c.SupportsAuth(mech) {
			return fmt.Errorf("upstream does not offer AUTH %s (STARTTLS first?)", mech)
		}
		return nil
	}
	if !c.SupportsAuth(mechPlain) && !c.SupportsAuth(mechLogin) {
		return errors.New("upstream offers neither AUTH PLAIN nor AUTH LOGIN (STARTTLS first?)")
	}
	return nil
}

// Check is Probe for a health check: it does not log in.
func (u *SMTP) Check(ctx context.Context) error {
	_, err := u.Probe(ctx)
	return err
}
