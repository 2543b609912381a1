package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
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
	// Client speaks MAIL, RCPT and RSET (the body goes through Data);
	// CommandTimeout bounds each
	// command and the reply to the final dot.
	Client  *gosmtp.Client
	raw     net.Conn // the TCP connection under any TLS: write deadlines and abort
	conn    net.Conn // what Client speaks on (raw or TLS): where SMTPData writes
	timeout time.Duration
}

// Has reports whether the upstream advertised the EHLO keyword ext.
func (c *SMTPConn) Has(ext string) bool {
	ok, _ := c.Client.Extension(ext)
	return ok
}

// Abort closes the connection at once, without QUIT: an unfinished message
// is discarded by the upstream (RFC 5321 §4.1.1.4).
func (c *SMTPConn) Abort() { c.raw.Close() }

// Data sends DATA and, after the upstream's 354, returns the writer of the
// message body. Write the body as go-smtp's server hands it over (dot
// decoded, lines ending in CRLF) and end it with Close, which returns the
// upstream's reply to the final dot.
func (c *SMTPConn) Data() (*SMTPData, error) {
	dc, err := c.Client.Data()
	if err != nil {
		return nil, err
	}
	return &SMTPData{cmd: dc, conn: c.conn, raw: c.raw, timeout: c.timeout, lineStart: true}, nil
}

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
	return &SMTPConn{Client: c, raw: k.raw, conn: k.conn, timeout: u.config().commandTimeout()}, nil
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
// go-smtp's client speaks on k.conn itself, TLS or not (never on a TLS
// connection of its own: see smtpstarttls.go).
func (u *SMTP) hello(k *link) (*gosmtp.Client, error) {
	conn := k.conn
	if u.config().tlsMode() == TLSStartTLS {
		greeting, err := u.startTLS(k)
		if err != nil {
			return nil, err
		}
		conn = &replayConn{Conn: k.conn, pending: greeting}
	}
	c := gosmtp.NewClient(&replyLimitConn{Conn: conn})
	u.setTimeouts(c)
	if err := c.Hello(u.config().localName()); err != nil {
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

// ErrBareLineEnd is a message body holding a CR not followed by LF or an
// LF not preceded by CR: SMTPData refuses to send it.
var ErrBareLineEnd = errors.New("upstream data: bare CR or LF in the message body")

// SMTPData writes a message body to the upstream, dot-stuffed (RFC 5321
// §4.5.2: a dot that starts a line is doubled). It sends the same bytes as
// net/textproto's DotWriter (which go-smtp's DataCommand uses), but each
// Write goes onto the connection go-smtp's client speaks on (TCP or TLS)
// as one chunk, copied only when it holds a line that starts with a dot,
// instead of byte by byte. Lines must end
// in CRLF: a bare CR or LF fails the Write before any of it is sent
// (SMTP smuggling: what ends the data must never be ambiguous upstream).
//
// The body's last CRLF is held back until more follows: Close has go-smtp
// write the end marker (CRLF "." CRLF) and read the reply, so that the
// client's own state stays right. Each write gets CommandTimeout.
type SMTPData struct {
	cmd     *gosmtp.DataCommand // writes the end marker and reads the reply
	conn    net.Conn            // where the body goes
	raw     net.Conn            // write deadlines
	timeout time.Duration

	lineStart bool   // the next byte of the body starts a line
	lastCR    bool   // the last byte of the body was a CR
	held      int    // bytes at the end of the body not sent yet: 0, 1 (CR) or 2 (CRLF)
	scratch   []byte // a chunk with its leading dots doubled
	err       error  // sticky
}

// Write sends p, dot-stuffed.
func (d *SMTPData) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !d.cleanLineEnds(p) {
		d.err = ErrBareLineEnd
		return 0, d.err
	}
	out, copied := d.stuff(p)
	d.lineStart = p[len(p)-1] == '\n'
	d.lastCR = p[len(p)-1] == '\r'
	if d.held > 0 {
		// The last write ended in a CRLF (or CR): it goes out first, in
		// scratch (out may be p, which is not d's to write into).
		if copied {
			out = slices.Insert(out, 0, crlf[:d.held]...)
		} else {
			out = append(append(d.scratch[:0], crlf[:d.held]...), out...)
		}
		d.scratch = out[:0]
	}
	d.held = 0 // of out's end, not sent now
	switch {
	case bytes.HasSuffix(out, crlf):
		d.held = 2
	case d.lastCR:
		d.held = 1
	}
	if err := d.send(out[:len(out)-d.held]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// crlf ends every line of a body.
var crlf = []byte("\r\n")

// cleanLineEnds reports whether every CR in p (with the last byte of the
// body before it) is followed by LF and every LF preceded by CR; a CR at
// the end of p waits for the next Write or Close.
func (d *SMTPData) cleanLineEnds(p []byte) bool {
	if d.lastCR != (p[0] == '\n') {
		return false
	}
	for i := 1; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		if p[i+j-1] != '\r' {
			return false
		}
		i += j + 1
	}
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\r')
		if j < 0 {
			return true
		}
		i += j + 1
		if i < len(p) && p[i] != '\n' {
			return false
		}
	}
}

// stuff returns p with a dot before each dot that starts a line: p itself
// when there is none, else a copy in scratch.
func (d *SMTPData) stuff(p []byte) (out []byte, copied bool) {
	i := bytes.Index(p, lfDot)
	first := d.lineStart && p[0] == '.'
	if i < 0 && !first {
		return p, false
	}
	out = d.scratch[:0]
	if first {
		out = append(out, '.')
	}
	for i >= 0 {
		out = append(out, p[:i+2]...) // through "\n."
		out = append(out, '.')
		p = p[i+2:]
		i = bytes.Index(p, lfDot)
	}
	out = append(out, p...)
	d.scratch = out[:0]
	return out, true
}

var lfDot = []byte("\n.")

// send writes b to the connection within CommandTimeout.
func (d *SMTPData) send(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	d.raw.SetWriteDeadline(time.Now().Add(d.timeout))
	if _, err := d.conn.Write(b); err != nil {
		d.err = fmt.Errorf("upstream data: %w", err)
		return d.err
	}
	return nil
}

// Close ends the body (CRLF "." CRLF: a body that does not end in CRLF
// gets one, as with DotWriter) and returns the upstream's reply; a reply
// other than 250 is a *gosmtp.SMTPError.
func (d *SMTPData) Close() (*gosmtp.DataResponse, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.lastCR {
		d.err = ErrBareLineEnd
		return nil, d.err
	}
	// A CRLF held back is the one go-smtp's end marker starts with: the
	// DotWriter under cmd has written nothing, so it writes CRLF "." CRLF.
	d.held = 0
	return d.cmd.CloseWithResponse()
}
