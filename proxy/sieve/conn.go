package sieve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

var errDone = proxy.ErrDone

// conn is one client before login; its goroutine owns netConn and r until
// the splice.
type conn struct {
	*proxy.PreauthConn // the client, and what Shutdown and Close use

	srv      *Server
	id       string
	remote   netip.AddrPort
	log      *slog.Logger
	ctx      context.Context
	r        *bufio.Reader
	tls      bool
	failures int
	commands int
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, id: proxy.NewSessionID(), remote: proxy.RemoteAddrPort(nc.RemoteAddr()),
		r: bufio.NewReaderSize(nc, s.limits().MaxLine)}
	c.log = s.logger().With("session", c.id, "remote", c.remote.String())
	c.PreauthConn = proxy.NewPreauthConn(nc, "sieve", c.log, s.limits().PreauthTimeout)
	if w := s.helloWatch(); w != nil {
		c.WatchHellos(w)
	}
	return c
}

// noError is a command's NO (or BYE, with close) reply.
type noError struct {
	code    string // RFC 5804 §1.3 response code, or ""
	text    string
	close   bool
	failure bool
}

func (e *noError) Error() string { return "sieve: NO " + e.text }

func no(text string) *noError { return &noError{text: text} }

var (
	errLineTooLong     = &noError{text: "Line too long", close: true}
	errLiteralTooLarge = &noError{text: "Literal too large", close: true}
	errSyntax          = no("Syntax error")
	errAuthFailed      = &noError{text: "Invalid credentials", failure: true}
	errTryLater        = &noError{code: "TRYLATER", text: "Service unavailable, try again later", failure: true}
	errRateLimited     = &noError{code: "TRYLATER", text: "Too many failed logins, try again later", failure: true}
	errUpstreamRefused = &noError{text: "Mail server refused the login", failure: true}
	errEncryptNeeded   = &noError{code: "ENCRYPT-NEEDED", text: "Use STARTTLS first"}
	errCanceled        = no("Authentication canceled")
	errBadBase64       = no("Invalid base64")
	errImpersonation   = &noError{text: "Logging in as another user is not allowed", failure: true}
)

// quoted is s as a ManageSieve quoted string (RFC 5804 §4), on one line.
func quoted(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (c *conn) serve(ctx context.Context) {
	var cancel context.CancelFunc
	c.ctx, cancel = context.WithCancel(ctx)
	defer c.Close()
	defer cancel()
	defer c.RecoverPanic(`BYE "Internal error"`)
	release, ok := c.Open(c.ctx, c.srv.Limits.Conns, c.remote.Addr(), `BYE "Too many connections"`)
	defer release()
	if !ok {
		return
	}
	if c.capability() != nil {
		return
	}
	for {
		args, err := c.readCommand()
		if err == nil {
			err = c.dispatch(args)
		}
		if err == nil {
			continue
		}
		var ne *noError
		if !errors.As(err, &ne) {
			c.EndOnError(err, `BYE "Disconnected for inactivity"`, `BYE "Disconnected for inactivity"`)
			return
		}
		if c.reply(ne) {
			return
		}
	}
}

func (c *conn) reply(ne *noError) (end bool) {
	end = ne.close
	if ne.failure {
		c.failures++
		end = end || c.failures >= c.srv.limits().MaxFailedLogins
	}
	status := "NO"
	if end {
		status = "BYE"
	}
	line := status + " "
	if ne.code != "" {
		line += "(" + ne.code + ") "
	}
	return c.Write(line+quoted(ne.text)) != nil || end
}

// dispatch runs a command of the non-authenticated state (RFC 5804 §2).
func (c *conn) dispatch(args []string) error {
	switch strings.ToUpper(args[0]) {
	case "CAPABILITY":
		return c.capability()
	case "NOOP":
		// RFC 5804 §2.13: a tag argument is echoed in a TAG code
		// (sieve-connect resynchronises after STARTTLS with it).
		if len(args) == 2 {
			return c.Write(`OK (TAG ` + quoted(args[1]) + `) "Done"`)
		}
		return c.Write(`OK "Done"`)
	case "LOGOUT":
		c.Write(`OK "Bye"`)
		return errDone
	case "STARTTLS":
		return c.startTLS()
	case "AUTHENTICATE":
		return c.authenticate(args[1:])
	}
	return no("Log in first, or unknown command")
}

// capability sends the capability response (RFC 5804 §1.7).
func (c *conn) capability() error {
	lines := []string{`"IMPLEMENTATION" "passgate"`}
	if c.tls || c.srv.AllowCleartext {
		lines = append(lines, `"SASL" "PLAIN LOGIN"`)
	} else {
		lines = append(lines, `"SASL" ""`)
	}
	lines = append(lines, c.srv.capabilities()...)
	if !c.tls && c.srv.TLSConfig != nil {
		lines = append(lines, `"STARTTLS"`)
	}
	lines = append(lines, `"VERSION" "1.0"`, `OK "passgate ready"`)
	return c.Write(lines...)
}

func (c *conn) startTLS() error {
	switch {
	case c.tls || c.srv.TLSConfig == nil:
		return no("STARTTLS not available")
	case c.r.Buffered() > 0:
		return &noError{text: "Data pipelined after STARTTLS", close: true}
	}
	if err := c.Write(`OK "Begin TLS negotiation now"`); err != nil {
		return err
	}
	tc, err := c.StartTLS(c.ctx, c.srv.TLSConfig)
	if err != nil {
		return errors.Join(errDone, err)
	}
	c.r.Reset(tc)
	c.tls = true
	return c.capability() // RFC 5804 §2.2
}

// authenticate runs AUTHENTICATE "PLAIN" / "LOGIN" [initial-response].
func (c *conn) authenticate(args []string) error {
	if !c.tls && !c.srv.AllowCleartext {
		return errEncryptNeeded
	}
	if len(args) < 1 || len(args) > 2 {
		return errSyntax
	}
	var ir []byte
	if len(args) == 2 {
		var err error
		if ir, err = decode(args[1]); err != nil {
			return err
		}
	}
	var user, secret string
	mech := strings.ToUpper(args[0])
	switch mech {
	case "PLAIN":
		if len(args) == 1 {
			var err error
			if ir, err = c.saslStep(""); err != nil {
				return err
			}
		}
		authzid, authcid, pw, err := proxy.DecodePlain(ir)
		if err != nil {
			return no("Malformed PLAIN response")
		}
		if authzid != "" && !store.SameUsername(authzid, authcid) {
			return errImpersonation
		}
		user, secret = authcid, pw
	case "LOGIN":
		u := ir
		var err error
		if len(args) == 1 {
			if u, err = c.saslStep(proxy.LoginPromptUser); err != nil {
				return err
			}
		}
		pw, err := c.saslStep(proxy.LoginPromptPass)
		if err != nil {
			return err
		}
		user, secret = string(u), string(pw)
	default:
		return no("Unsupported authentication mechanism")
	}
	return c.login(mech, user, secret)
}

// saslStep sends a challenge as a quoted string and reads the response, a
// string; "*" cancels (RFC 5804 §2.1).
func (c *conn) saslStep(challenge string) ([]byte, error) {
	resp, err := c.SASLStep(quoted(challenge), c.readResponse)
	return resp, saslError(err)
}

// readResponse reads a SASL response: one string.
func (c *conn) readResponse() (string, error) {
	args, err := c.readArgs()
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", errSyntax
	}
	return args[0], nil
}

// saslError is the reply to a SASL step's or decoding's error.
func saslError(err error) error { return proxy.SASLReply(err, errCanceled, errBadBase64) }

func decode(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := proxy.DecodeSASL(s)
	return b, saslError(err)
}

func (c *conn) login(mech, user, secret string) error {
	flow := proxy.LoginFlow{Auth: c.srv.Auth, Upstream: c.srv.Upstream, Sessions: c.srv.Sessions, Log: c.log}
	a := authn.Attempt{Username: user, Secret: secret, Protocol: store.ScopeSieve, RemoteIP: c.remote.Addr(),
		Mechanism: mech, TLS: proxy.TLSVersion(c.Client()), SessionID: c.id,
		Device: proxy.NewDevice("", c.TLSFingerprint(), c.remote.Addr())}
	r, outcome, _ := flow.LogIn(c.ctx, a, c.remote)
	switch outcome {
	case proxy.LoginOK:
		return c.relay(r)
	case proxy.LoginMFA:
		return &noError{text: c.srv.mfaMessage(), failure: true}
	case proxy.LoginDeviceRefused:
		return &noError{text: c.srv.deviceMessage(), failure: true}
	case proxy.LoginRateLimited:
		return errRateLimited
	case proxy.LoginAuthUnavailable, proxy.LoginUpstreamUnavailable, proxy.LoginRelink, proxy.LoginSessionLimit:
		return errTryLater
	case proxy.LoginUpstreamRefused:
		return errUpstreamRefused
	}
	return errAuthFailed
}

func (c *conn) relay(r *proxy.Relayed) error {
	defer r.Done()
	client := c.TakeOver(r.Up.Conn)
	if err := c.Write(`OK "Logged in"`); err != nil {
		return err
	}
	client.SetDeadline(time.Time{})
	buffered, _ := c.r.Peek(c.r.Buffered())
	err := proxy.Splice(r.Ctx, proxy.Leg{Conn: client, Buffered: bytes.Clone(buffered)},
		proxy.Leg{Conn: r.Up.Conn, Buffered: r.Up.Buffered}, c.srv.IdleTimeout)
	c.log.Info("sieve session ended", "user", r.Decision.Username, "duration", time.Since(r.Started).Round(time.Millisecond), "err", err)
	return errDone
}

// readCommand arms the command's deadline, counts it and reads its
// arguments (the first is the command name, an atom).
func (c *conn) readCommand() ([]string, error) {
	if err := c.SetReadDeadline(); err != nil {
		return nil, err
	}
	args, err := c.readArgs()
	if err != nil {
		return nil, err
	}
	if c.commands++; c.commands > c.srv.limits().MaxPreauthCommands {
		return nil, &noError{text: "Too many commands before login", close: true}
	}
	if len(args) == 0 {
		return nil, errSyntax
	}
	return args, nil
}

// readArgs reads one line of atoms, quoted strings and literals ({n+} or
// {n} then CRLF and n bytes; RFC 5804 §4), under the current deadline.
func (c *conn) readArgs() ([]string, error) {
	var args []string
	for {
		line, err := c.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errLineTooLong
		}
		if err != nil {
			return nil, fmt.Errorf("read command: %w", err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
		n := -1
		for s != "" {
			s = strings.TrimLeft(s, " ")
			switch {
			case s == "":
			case s[0] == '"':
				v, rest, ok := unquote(s)
				if !ok {
					return nil, errSyntax
				}
				args, s = append(args, v), rest
			case s[0] == '{' && strings.HasSuffix(s, "}"):
				size, err := strconv.Atoi(strings.TrimSuffix(s[1:len(s)-1], "+"))
				if err != nil || size < 0 {
					return nil, errSyntax
				}
				if size > c.srv.limits().MaxLiteral {
					return nil, errLiteralTooLarge
				}
				n, s = size, ""
			default:
				i := strings.IndexAny(s, ` "{`)
				if i < 0 {
					i = len(s)
				}
				if i == 0 {
					return nil, errSyntax
				}
				args, s = append(args, s[:i]), s[i:]
			}
		}
		if n < 0 {
			return args, nil
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return nil, fmt.Errorf("read literal: %w", err)
		}
		args = append(args, string(lit))
	}
}

// unquote reads a quoted string at the start of s.
func unquote(s string) (v, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}
