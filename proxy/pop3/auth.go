package pop3

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

// Replies to failed logins (RFC 3206 response codes). Every credential
// failure gets the same bytes, whatever the reason.
var (
	errAuthFailed          = &replyError{code: "AUTH", text: "Invalid credentials", failure: true}
	errAuthUnavailable     = &replyError{code: "SYS/TEMP", text: "Authentication service unavailable, try again later", failure: true}
	errRateLimited         = &replyError{code: "SYS/TEMP", text: "Too many failed logins, try again later", failure: true}
	errUpstreamUnavailable = &replyError{code: "SYS/TEMP", text: "Mail server unavailable, try again later", failure: true}
	errUpstreamRefused     = &replyError{code: "SYS/PERM", text: "Mail server refused the login", failure: true}
	errImpersonation       = &replyError{code: "AUTH", text: "Logging in as another user is not allowed", failure: true}
	errPrivacyRequired     = &replyError{code: "AUTH", text: "Plaintext login disallowed: use STLS or port 995"}
	errAuthCanceled        = errf("Authentication canceled")
	errBadBase64           = errf("Invalid base64")
	errBadPLAIN            = errf("Malformed PLAIN response")
)

// cmdCapa answers CAPA (RFC 2449 §5).
func (c *conn) cmdCapa(string) error {
	lines := []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if c.cleartextOK() {
		lines = append(lines, "USER", "SASL PLAIN LOGIN")
	}
	if !c.tls && c.srv.TLSConfig != nil {
		lines = append(lines, "STLS")
	}
	lines = append(lines, "IMPLEMENTATION passgate", ".")
	return c.Write(lines...)
}

// cleartextOK reports whether a login may be sent on this connection.
func (c *conn) cleartextOK() bool { return c.tls || c.srv.AllowCleartext }

// cmdSTLS answers STLS (RFC 2595 §4) and runs the handshake. Bytes
// buffered after the STLS line refuse it and close the connection
// (CVE-2021-33515 class).
func (c *conn) cmdSTLS(arg string) error {
	switch {
	case arg != "":
		return errf("STLS takes no argument")
	case c.tls:
		return errf("TLS is already active")
	case c.srv.TLSConfig == nil:
		return errf("STLS not available")
	case c.r.Buffered() > 0:
		return &replyError{text: "Data pipelined after STLS", close: true}
	}
	if err := c.Write("+OK Begin TLS negotiation now"); err != nil {
		return err
	}
	tc, err := c.StartTLS(c.ctx, c.srv.TLSConfig)
	if err != nil {
		c.log.Debug("pop3 stls handshake failed", "err", err)
		return errors.Join(errDone, err)
	}
	c.r.Reset(tc)
	c.tls = true
	c.user = "" // RFC 2595 §4: forget what came before TLS
	return nil
}

// cmdUser answers USER name (RFC 1939 §7).
func (c *conn) cmdUser(arg string) error {
	if !c.cleartextOK() {
		return errPrivacyRequired
	}
	if arg == "" {
		return errf("USER needs a name")
	}
	c.user = arg
	return c.Write("+OK Send your password")
}

// cmdPass answers PASS secret (RFC 1939 §7): the rest of the line is the
// secret, spaces included.
func (c *conn) cmdPass(arg string) error {
	if !c.cleartextOK() {
		return errPrivacyRequired
	}
	if c.user == "" {
		return errf("USER first")
	}
	user := c.user
	c.user = ""
	return c.login("USER", user, arg)
}

// cmdAuth answers AUTH (RFC 5034 §4) for PLAIN and LOGIN, with an
// optional initial response; AUTH alone lists the mechanisms, as Outlook
// expects.
func (c *conn) cmdAuth(arg string) error {
	if !c.cleartextOK() {
		return errPrivacyRequired
	}
	if arg == "" {
		return c.Write("+OK", "PLAIN", "LOGIN", ".")
	}
	mech, irText, hasIR := strings.Cut(arg, " ")
	var ir []byte
	if hasIR {
		var err error
		if ir, err = decode(irText); err != nil {
			return err
		}
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		if !hasIR {
			var err error
			if ir, err = c.saslStep(""); err != nil {
				return err
			}
		}
		authzid, authcid, secret, err := proxy.DecodePlain(ir)
		if err != nil {
			return errBadPLAIN
		}
		if authzid != "" && !store.SameUsername(authzid, authcid) {
			c.log.Info("pop3 login", "user", proxy.LoggedUsername(authcid), "mechanism", "PLAIN", "result", "authzid-refused")
			return errImpersonation
		}
		return c.login("PLAIN", authcid, secret)
	case "LOGIN":
		user := ir
		var err error
		if !hasIR {
			if user, err = c.saslStep(proxy.LoginPromptUser); err != nil {
				return err
			}
		}
		secret, err := c.saslStep(proxy.LoginPromptPass)
		if err != nil {
			return err
		}
		return c.login("LOGIN", string(user), string(secret))
	}
	return errf("Unsupported authentication mechanism")
}

// saslStep sends "+ challenge" and reads the client's base64 response
// under the command's deadline; "*" cancels (RFC 5034 §4).
func (c *conn) saslStep(challenge string) ([]byte, error) {
	resp, err := c.SASLStep("+ "+challenge, c.readResponse)
	return resp, saslError(err)
}

// readResponse reads a SASL response line.
func (c *conn) readResponse() (string, error) {
	line, err := c.readLine()
	return string(line), err
}

// saslError is the reply to a SASL step's or decoding's error.
func saslError(err error) error { return proxy.SASLReply(err, errAuthCanceled, errBadBase64) }

func decode(s string) ([]byte, error) {
	b, err := proxy.DecodeSASL(s)
	return b, saslError(err)
}

// login decides the login and, on success only, relays the connection.
func (c *conn) login(mech, user, secret string) error {
	flow := proxy.LoginFlow{Auth: c.srv.Auth, Upstream: c.srv.Upstream, Sessions: c.srv.Sessions, Log: c.log}
	a := authn.Attempt{
		Username:  user,
		Secret:    secret,
		Protocol:  store.ScopePOP3,
		RemoteIP:  c.remote.Addr(),
		Mechanism: mech,
		TLS:       proxy.TLSVersion(c.Client()),
		SessionID: c.id,
		Device:    proxy.NewDevice("", c.TLSFingerprint(), c.remote.Addr()),
	}
	r, outcome, _ := flow.LogIn(c.ctx, a, c.remote)
	switch outcome {
	case proxy.LoginOK:
		return c.relay(r)
	case proxy.LoginMFA:
		return &replyError{code: "AUTH", text: c.srv.mfaMessage(), failure: true}
	case proxy.LoginDeviceRefused:
		return &replyError{code: "AUTH", text: c.srv.deviceMessage(), failure: true}
	case proxy.LoginRateLimited:
		return errRateLimited
	case proxy.LoginAuthUnavailable, proxy.LoginSessionLimit:
		return errAuthUnavailable
	case proxy.LoginUpstreamRefused:
		return errUpstreamRefused
	case proxy.LoginUpstreamUnavailable, proxy.LoginRelink:
		return errUpstreamUnavailable
	}
	return errAuthFailed
}

// relay sends the upstream's +OK and splices client and upstream until
// either side ends or revocation cancels r.Ctx.
func (c *conn) relay(r *proxy.Relayed) error {
	defer r.Done()
	text := proxy.OneLine(r.Up.Text)
	if text == "" {
		text = "Logged in"
	}
	client := c.TakeOver(r.Up.Conn)
	if err := c.Write("+OK " + text); err != nil {
		return err
	}
	client.SetDeadline(time.Time{})
	buffered, _ := c.r.Peek(c.r.Buffered())
	err := proxy.Splice(r.Ctx,
		proxy.Leg{Conn: client, Buffered: bytes.Clone(buffered)},
		proxy.Leg{Conn: r.Up.Conn, Buffered: r.Up.Buffered},
		c.srv.IdleTimeout)
	attrs := []any{"user", r.Decision.Username, "duration", time.Since(r.Started).Round(time.Millisecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	c.log.Info("pop3 session ended", attrs...)
	return errDone
}
