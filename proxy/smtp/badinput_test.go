package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// badStep is one move of a bad-input transcript: bytes the client sends,
// the exact reply line it must read next, or an action.
type badStep struct {
	send string
	want string
	do   func(*badConn)
}

func tx(s string) badStep           { return badStep{send: s} }
func rx(line string) badStep        { return badStep{want: line} }
func act(f func(*badConn)) badStep  { return badStep{do: f} }
func rxs(lines ...string) []badStep { return mapSteps(lines, rx) }
func mapSteps(lines []string, f func(string) badStep) []badStep {
	steps := make([]badStep, len(lines))
	for i, l := range lines {
		steps[i] = f(l)
	}
	return steps
}

// steps joins step lists.
func steps(groups ...any) []badStep {
	var out []badStep
	for _, g := range groups {
		switch g := g.(type) {
		case badStep:
			out = append(out, g)
		case []badStep:
			out = append(out, g...)
		}
	}
	return out
}

// badConn is a transcript client that can start TLS.
type badConn struct {
	*textConn
	pool *x509.CertPool
}

// sendRaw writes s as is. A write error is not fatal: the server may close
// before it has read everything, and the reply is what the test checks. A
// large write runs in its own goroutine, so that the reply can be read
// while the server refuses the rest.
func (c *badConn) sendRaw(s string) {
	c.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if len(s) <= 64<<10 {
		c.c.Write([]byte(s))
		return
	}
	go c.c.Write([]byte(s))
}

// expectLine reads one reply line and compares it exactly.
func (c *badConn) expectLine(want string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	got, err := c.tp.ReadLine()
	if err != nil {
		c.t.Fatalf("read: %v, want %q", err, want)
	}
	if got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// run plays a transcript.
func (c *badConn) run(steps []badStep) {
	c.t.Helper()
	for _, s := range steps {
		switch {
		case s.do != nil:
			s.do(c)
		case s.send != "":
			c.sendRaw(s.send)
		default:
			c.expectLine(s.want)
		}
	}
}

// startTLS runs STARTTLS and the handshake (RFC 3207 §4).
func (c *badConn) startTLS() {
	c.t.Helper()
	c.transactWant("STARTTLS", 220, "2.0.0 Ready to start TLS")
	tc := tls.Client(c.c, &tls.Config{RootCAs: c.pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.c, c.tp = tc, textproto.NewConn(tc)
}

// halfClose shuts down the client's sending side (TCP FIN), as a client
// that dies mid-command or a half-open connection does.
func (c *badConn) halfClose() {
	c.t.Helper()
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		c.t.Fatalf("CloseWrite: %v", err)
	}
}

// Replies of go-smtp and passgate the bad inputs expect.
const (
	replyNoop          = "250 2.0.0 I have successfully done nothing"
	replyBadCommand    = "501 5.5.2 Bad command"
	replyBadSyntax     = "500 5.5.2 Error: bad syntax"
	replyTooLong       = "500 5.4.0 Too long line, closing connection"
	replyTooManyErrors = "500 5.5.1 Too many errors. Quiting now"
	replyIntroduce     = "502 5.5.1 Please introduce yourself first."
	replyBadBase64     = "454 4.7.0 Invalid base64 data"
	replyCancelled     = "501 5.0.0 Negotiation cancelled"
	replyBadPlain      = "501 5.5.2 Malformed PLAIN response"
	replyBadCreds      = "535 5.7.8 Authentication credentials invalid"
	replyAuthOK        = "235 2.0.0 Authentication succeeded"
	replyAuthRequired  = "530 5.7.0 Authentication required"
	replyUnknownMech   = "504 5.5.4 Unsupported authentication mechanism"
	replyTLSRequired   = "523 5.7.10 TLS is required"
	replyUserPrompt    = "334 VXNlcm5hbWU6" // "Username:"
	replyPassPrompt    = "334 UGFzc3dvcmQ6" // "Password:"
	replyMailSyntax    = "501 5.5.2 Was expecting MAIL arg syntax of FROM:<address>"
	replyMailOK        = "250 2.0.0 Roger, accepting mail from <" + appUser + ">"
	replyRcptOK        = "250 2.0.0 I'll make sure <bob@example.net> gets this"
	replyNoMail        = "502 5.5.1 Missing MAIL FROM command."
	replyNoRcpt        = "502 5.5.1 Missing RCPT TO command."
	replyGoAhead       = "354 Go ahead. End your data with <CR><LF>.<CR><LF>"
	replyAborted       = "451 4.3.0 Message transfer aborted, message not accepted"
	replyQueued        = "250 2.0.0 OK: queued"
	replyBareLineEnd   = "550 5.5.2 Message refused: bare CR or LF in it, lines must end with CRLF"
	replySizeExceeded  = "552 5.3.4 Max message size exceeded"
	replyInTLS         = "502 5.5.1 Already running in TLS"
)

// Server kinds the bad inputs run against.
const (
	srvPlain       = "cleartext allowed, STARTTLS offered"
	srvTLSRequired = "STARTTLS offered, cleartext refused"
	srvNoTLS       = "cleartext allowed, no TLS"
	srvImplicitTLS = "implicit TLS, cleartext refused"
)

// What the connection must be like after a bad input.
const (
	usable = "usable" // a following NOOP gets 250
	closed = "closed" // the server closed it on purpose
)

// longNoop is a NOOP padded with spaces to n bytes, CRLF included.
func longNoop(n int) string { return "NOOP" + strings.Repeat(" ", n-len("NOOP\r\n")) + "\r\n" }

// Reusable moves.
var (
	ehlo   = act(func(c *badConn) { c.transactWant("EHLO client.test", 250, "") })
	readEH = act(func(c *badConn) { c.expect(250) }) // a pipelined EHLO's reply
	authOK = act(func(c *badConn) {
		c.transactWant(plainIR("", appUser, appSecret), 235, "2.0.0 Authentication succeeded")
	})
	startTLS  = act((*badConn).startTLS)
	halfClose = act((*badConn).halfClose)
	// inData logs in and opens a message: the next bytes are its body.
	inData = steps(ehlo, authOK, tx("MAIL FROM:<"+appUser+">\r\n"), rx(replyMailOK),
		tx("RCPT TO:<bob@example.net>\r\n"), rx(replyRcptOK), tx("DATA\r\n"), rx(replyGoAhead))
)

// clientHello is the start of a TLS 1.2+ ClientHello record.
const clientHello = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" +
	"\x8a\x1f\x00\x52\x9c\x0b\x77\x31\x4e\xe0\x12\x6a\x90\x3d\xc5\x28"

// badInputs are hostile or malformed inputs before and around AUTH, each
// with the exact replies and what must become of the connection. relayed
// is the number of messages the upstream must have accepted; login marks
// the inputs that log in (the others must not reach the upstream at all).
var badInputs = []struct {
	name    string
	srv     string
	steps   []badStep
	after   string
	login   bool
	relayed int
}{
	// Framing (RFC 5321 §2.3.8, §4.1.1, §4.5.3.1.4).
	{name: "empty line", srv: srvPlain, steps: steps(tx("\r\n"), rx(replyBadSyntax)), after: usable},
	{name: "bare LF line end (accepted)", srv: srvPlain, steps: steps(tx("NOOP\n"), rx(replyNoop)), after: usable},
	{name: "CR inside the verb", srv: srvPlain, steps: steps(tx("NO\rOP\r\n"), rx(replyBadCommand)), after: usable},
	{name: "NUL after the verb", srv: srvPlain, steps: steps(tx("NOOP\x00\r\n"), rx(replyBadCommand)), after: usable},
	{name: "verb of NULs", srv: srvPlain, steps: steps(tx("\x00\x00\x00\x00\r\n"),
		rx("500 5.5.2 Syntax errors, \x00\x00\x00\x00 command unrecognized")), after: usable},
	{name: "verb too short", srv: srvPlain, steps: steps(tx("NO\r\n"), rx(replyBadCommand)), after: usable},
	{name: "unknown verb", srv: srvPlain, steps: steps(tx("XYZZ now\r\n"),
		rx("500 5.5.2 Syntax errors, XYZZ command unrecognized")), after: usable},
	{name: "8-bit verb", srv: srvPlain, steps: steps(tx("N\xc3\xa9OP\r\n"), rx(replyBadCommand)), after: usable},
	{name: "line of 2000 bytes (accepted)", srv: srvPlain, steps: steps(tx("NOOP\r\n"), rx(replyNoop),
		tx(longNoop(2000)), rx(replyNoop)), after: usable},
	{name: "line of 2001 bytes", srv: srvPlain, steps: steps(tx("NOOP\r\n"), rx(replyNoop),
		tx(longNoop(2001)), rx(replyTooLong)), after: closed},
	{name: "1 MB command line", srv: srvPlain, steps: steps(tx("MAIL FROM:<"+strings.Repeat("a", 1<<20)+">\r\n"),
		rx(replyTooLong)), after: closed},
	{name: "HTTP request", srv: srvPlain, steps: steps(tx("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
		rxs(replyBadCommand, replyBadCommand, replyBadSyntax)), after: usable},
	{name: "HTTP POST: the fourth error closes", srv: srvPlain,
		steps: steps(tx("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"),
			rxs("500 5.5.2 Syntax errors, POST command unrecognized", replyBadCommand, replyBadCommand, replyBadSyntax,
				replyTooManyErrors)), after: closed},
	{name: "TLS ClientHello on the plain port", srv: srvPlain, steps: steps(tx(clientHello),
		rx("421 4.7.0 TLS handshake on a plain connection: use implicit TLS or STARTTLS")), after: closed},
	{name: "pipelined junk", srv: srvPlain, steps: steps(tx("EHLO client.test\r\nJUNK \x00\xff\r\nNOOP\r\n"), readEH,
		rxs("500 5.5.2 Syntax errors, JUNK command unrecognized", replyNoop)), after: usable},
	{name: "EHLO without a name", srv: srvPlain, steps: steps(tx("EHLO\r\n"),
		rx("501 5.5.2 Domain/address argument required for HELO")), after: usable},
	{name: "HELO (accepted)", srv: srvPlain, steps: steps(tx("HELO client.test\r\n"), rx("250 2.0.0 Hello client.test")), after: usable},

	// AUTH (RFC 4954 §4, RFC 4616, draft-murchison-sasl-login).
	{name: "AUTH before EHLO", srv: srvPlain, steps: steps(tx(plainIR("", appUser, appSecret)+"\r\n"), rx(replyIntroduce)), after: usable},
	{name: "AUTH without mechanism", srv: srvPlain, steps: steps(ehlo, tx("AUTH\r\n"), rx("502 5.5.4 Missing parameter")), after: usable},
	{name: "unknown mechanism", srv: srvPlain, steps: steps(ehlo, tx("AUTH CRAM-MD5\r\n"), rx(replyUnknownMech)), after: usable},
	{name: "unknown mechanism with an initial response", srv: srvPlain, steps: steps(ehlo,
		tx("AUTH XOAUTH2 "+b64("user=x\x01auth=Bearer y\x01\x01")+"\r\n"), rx(replyUnknownMech)), after: usable},
	{name: "lower-case mechanism (accepted), wrong secret", srv: srvPlain, steps: steps(ehlo,
		tx("auth plain "+b64("\x00"+appUser+"\x00wrong")+"\r\n"), rx(replyBadCreds)), after: usable},
	{name: "invalid base64 initial response", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN AAA\r\n"), rx(replyBadBase64)), after: usable},
	{name: "URL-safe base64 initial response", srv: srvPlain, steps: steps(ehlo,
		tx("AUTH PLAIN "+base64.URLEncoding.EncodeToString([]byte("\x00\xfb\xff\x00\xfe"))+"\r\n"), rx(replyBadBase64)), after: usable},
	{name: "NUL in the initial response", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN AG\x00FsaWNl\r\n"), rx(replyBadBase64)), after: usable},
	{name: "invalid base64 response", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN\r\n"), rx("334 "),
		tx("not base64!\r\n"), rx(replyBadBase64)), after: usable},
	{name: "PLAIN with 1 field", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN "+b64(appUser)+"\r\n"), rx(replyBadPlain)), after: usable},
	{name: "PLAIN with 2 fields", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN "+b64(appUser+"\x00"+appSecret)+"\r\n"),
		rx(replyBadPlain)), after: usable},
	{name: "PLAIN with 4 fields", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN "+b64("\x00"+appUser+"\x00"+appSecret+"\x00x")+"\r\n"),
		rx(replyBadPlain)), after: usable},
	{name: "PLAIN empty initial response", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN =\r\n"), rx(replyBadPlain)), after: usable},
	{name: "PLAIN empty response line", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN\r\n"), rx("334 "),
		tx("\r\n"), rx(replyBadPlain)), after: usable},
	{name: "PLAIN with an empty user", srv: srvPlain, steps: steps(ehlo, tx(plainIR("", "", appSecret)+"\r\n"), rx(replyBadCreds)), after: usable},
	{name: "PLAIN with an empty password", srv: srvPlain, steps: steps(ehlo, tx(plainIR("", appUser, "")+"\r\n"), rx(replyBadCreds)), after: usable},
	{name: "PLAIN with a foreign authzid", srv: srvPlain, steps: steps(ehlo,
		tx(plainIR("bob@example.org", appUser, appSecret)+"\r\n"), rx(replyBadCreds)), after: usable},
	{name: "PLAIN with the user as authzid in other case (accepted)", srv: srvPlain, steps: steps(ehlo,
		tx(plainIR("Alice@Example.ORG", appUser, appSecret)+"\r\n"), rx(replyAuthOK)), after: usable, login: true},
	{name: "PLAIN cancelled", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN\r\n"), rx("334 "), tx("*\r\n"), rx(replyCancelled)), after: usable},
	{name: "LOGIN cancelled at the username", srv: srvPlain, steps: steps(ehlo, tx("AUTH LOGIN\r\n"), rx(replyUserPrompt),
		tx("*\r\n"), rx(replyCancelled)), after: usable},
	{name: "LOGIN cancelled at the password", srv: srvPlain, steps: steps(ehlo, tx("AUTH LOGIN "+b64(appUser)+"\r\n"),
		rx(replyPassPrompt), tx("*\r\n"), rx(replyCancelled)), after: usable},
	{name: "LOGIN with invalid base64 password", srv: srvPlain, steps: steps(ehlo, tx("AUTH LOGIN\r\n"), rx(replyUserPrompt),
		tx(b64(appUser)+"\r\n"), rx(replyPassPrompt), tx("%%%%\r\n"), rx(replyBadBase64)), after: usable},
	{name: "LOGIN with an empty initial response", srv: srvPlain, steps: steps(ehlo, tx("AUTH LOGIN =\r\n"), rx(replyPassPrompt),
		tx(b64(appSecret)+"\r\n"), rx(replyBadCreds)), after: usable},
	{name: "AUTH twice", srv: srvPlain, steps: steps(ehlo, authOK, tx(plainIR("", appUser, appSecret)+"\r\n"),
		rx("503 5.5.1 Already authenticated")), after: usable, login: true},
	{name: "AUTH line over the limit", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN "+strings.Repeat("QUFB", 1000)+"\r\n"),
		rx(replyTooLong)), after: closed},
	{name: "SASL response over the limit", srv: srvPlain, steps: steps(ehlo, tx("AUTH PLAIN\r\n"), rx("334 "),
		tx(strings.Repeat("QUFB", 1000)+"\r\n"), rx(replyTooLong)), after: closed},
	{name: "three wrong AUTHs pipelined", srv: srvPlain, steps: steps(ehlo,
		tx(plainIR("", appUser, "x")+"\r\n"+plainIR("", appUser, "y")+"\r\n"+plainIR("", appUser, "z")+"\r\n"),
		rxs(replyBadCreds, replyBadCreds, "421 4.7.0 Too many failed login attempts, closing connection")), after: closed},
	{name: "AUTH PLAIN before STARTTLS", srv: srvTLSRequired, steps: steps(ehlo, tx(plainIR("", appUser, appSecret)+"\r\n"),
		rx(replyTLSRequired)), after: usable},
	{name: "AUTH LOGIN before STARTTLS", srv: srvTLSRequired, steps: steps(ehlo, tx("AUTH LOGIN\r\n"), rx(replyTLSRequired)), after: usable},
	{name: "AUTH after STARTTLS needs a new EHLO", srv: srvTLSRequired, steps: steps(ehlo, startTLS,
		tx(plainIR("", appUser, appSecret)+"\r\n"), rx(replyIntroduce)), after: usable},

	// Commands in the wrong state (RFC 4954 §6, RFC 5321 §4.1.4).
	{name: "MAIL before AUTH", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+">\r\n"), rx(replyAuthRequired)), after: usable},
	{name: "MAIL before STARTTLS", srv: srvTLSRequired, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+">\r\n"), rx(replyAuthRequired)), after: usable},
	{name: "MAIL before EHLO", srv: srvPlain, steps: steps(tx("MAIL FROM:<"+appUser+">\r\n"), rx(replyIntroduce)), after: usable},
	{name: "RCPT before MAIL", srv: srvPlain, steps: steps(ehlo, tx("RCPT TO:<bob@example.net>\r\n"), rx(replyNoMail)), after: usable},
	{name: "DATA before MAIL", srv: srvPlain, steps: steps(ehlo, tx("DATA\r\n"), rx(replyNoRcpt)), after: usable},
	{name: "DATA before RCPT", srv: srvPlain, steps: steps(ehlo, authOK, tx("MAIL FROM:<"+appUser+">\r\n"), rx(replyMailOK),
		tx("DATA\r\n"), rx(replyNoRcpt)), after: usable, login: true},
	{name: "DATA with an argument", srv: srvPlain, steps: steps(ehlo, tx("DATA now\r\n"),
		rx("501 5.5.4 DATA command should not have any arguments")), after: usable},
	{name: "BDAT before MAIL: the chunk is skipped", srv: srvPlain, steps: steps(ehlo, tx("BDAT 6\r\nNOOP\r\n"), rx(replyNoRcpt)), after: usable},
	{name: "MAIL without FROM:", srv: srvPlain, steps: steps(ehlo, tx("MAIL TO:<"+appUser+">\r\n"), rx(replyMailSyntax)), after: usable},
	{name: "MAIL with an unterminated path", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"\r\n"), rx(replyMailSyntax)), after: usable},
	{name: "MAIL with an unknown parameter", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"> FOO=bar\r\n"),
		rx("500 5.5.4 Unknown MAIL FROM argument")), after: usable},
	{name: "MAIL with a malformed parameter", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"> SIZE=1=2\r\n"),
		rx("501 5.5.4 Unable to parse MAIL ESMTP parameters")), after: usable},
	{name: "SIZE over the limit before AUTH", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"> SIZE=999999999\r\n"),
		rx(replySizeExceeded)), after: usable},
	{name: "SIZE over the limit after AUTH", srv: srvPlain, steps: steps(ehlo, authOK, tx("MAIL FROM:<"+appUser+"> SIZE=999999999\r\n"),
		rx(replySizeExceeded)), after: usable, login: true},
	{name: "SIZE not a number", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"> SIZE=lots\r\n"),
		rx("501 5.5.4 Unable to parse SIZE as an integer")), after: usable},
	{name: "SIZE over 32 bits", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<"+appUser+"> SIZE=99999999999\r\n"),
		rx("501 5.5.4 Unable to parse SIZE as an integer")), after: usable},
	{name: "NUL in the sender", srv: srvPlain, steps: steps(ehlo, tx("MAIL FROM:<a\x00b@example.org>\r\n"), rx(replyAuthRequired)), after: usable},
	{name: "VRFY tells nothing", srv: srvPlain, steps: steps(ehlo, tx("VRFY "+appUser+"\r\n"),
		rx("252 2.5.0 Cannot VRFY user, but will accept message")), after: usable},
	{name: "EXPN", srv: srvPlain, steps: steps(ehlo, tx("EXPN staff\r\n"), rx("502 5.5.1 EXPN command not implemented")), after: usable},

	// STARTTLS (RFC 3207 §4, §4.2).
	{name: "STARTTLS twice", srv: srvPlain, steps: steps(ehlo, startTLS, tx("STARTTLS\r\n"), rx(replyInTLS)), after: usable},
	{name: "STARTTLS on implicit TLS", srv: srvImplicitTLS, steps: steps(ehlo, tx("STARTTLS\r\n"), rx(replyInTLS)), after: usable},
	{name: "STARTTLS without TLS configured", srv: srvNoTLS, steps: steps(ehlo, tx("STARTTLS\r\n"),
		rx("502 5.5.1 TLS not supported")), after: usable},
	{name: "command pipelined after STARTTLS is dropped", srv: srvPlain, steps: steps(ehlo,
		tx("STARTTLS\r\nMAIL FROM:<"+appUser+">\r\n"), rx("220 2.0.0 Ready to start TLS"),
		act(func(c *badConn) {
			tc := tls.Client(c.c, &tls.Config{RootCAs: c.pool, ServerName: "127.0.0.1"})
			tc.SetDeadline(time.Now().Add(ioTimeout))
			if err := tc.Handshake(); err != nil {
				c.t.Fatalf("TLS handshake: %v", err)
			}
			c.c, c.tp = tc, textproto.NewConn(tc)
		}),
		// Had the MAIL run after the handshake, its reply would come first.
		ehlo), after: usable},

	// Half-open connections: the client stops sending.
	{name: "half-close after EHLO", srv: srvPlain, steps: steps(ehlo, halfClose), after: closed},
	// go-smtp takes a last line without CRLF as a command.
	{name: "half-close mid-line", srv: srvPlain, steps: steps(ehlo, tx("NOO"), halfClose, rx(replyBadCommand)), after: closed},
	{name: "half-close inside a SASL exchange", srv: srvPlain, steps: steps(ehlo, tx("AUTH LOGIN\r\n"), rx(replyUserPrompt),
		halfClose), after: closed},

	// Message bodies (RFC 5321 §4.1.1.4, §4.5.2, §4.5.3.1.6).
	{name: "DATA ends without CRLF.CRLF, then EOF", srv: srvPlain, steps: steps(inData, tx("Subject: x\r\n\r\nno end"),
		halfClose, rx(replyAborted)), after: closed, login: true},
	{name: "1 MB line inside DATA", srv: srvPlain, steps: steps(inData, tx("Subject: x\r\n\r\n"+strings.Repeat("x", 1<<20)+"\r\n.\r\n"),
		rxs("500 5.5.2 Line too long, message not accepted", replyTooLong)), after: closed, login: true},
	// go-smtp counts a line's bytes from the LF before it: 1 + 1998 + CR
	// is its limit of 2000, and passgate enforces it on the body itself
	// (linelimit.go), then hands the check back for the commands. (A read
	// that takes a line over the limit fails whole: the NOOP is sent apart.)
	{name: "line at the limit inside DATA, then a command over it", srv: srvPlain, steps: steps(inData,
		tx("Subject: x\r\n\r\n"+strings.Repeat("x", 1998)+"\r\n.\r\n"), rx(replyQueued), tx(longNoop(2001)), rx(replyTooLong)),
		after: closed, login: true, relayed: 1},
	{name: "line one byte over the limit inside DATA", srv: srvPlain, steps: steps(inData,
		tx("Subject: x\r\n\r\n"+strings.Repeat("x", 1999)+"\r\n.\r\nNOOP\r\n"),
		rxs("500 5.5.2 Line too long, message not accepted", replyTooLong)), after: closed, login: true},
	{name: "bare LF dot inside DATA refuses the message", srv: srvPlain, steps: steps(inData,
		tx("Subject: x\n\nline\n.\nMAIL FROM:<evil@example.net>\n\r\n.\r\n"), rx(replyBareLineEnd)), after: usable, login: true},
	{name: "NUL bytes inside DATA are relayed", srv: srvPlain, steps: steps(inData, tx("Subject: x\r\n\r\na\x00b\r\n.\r\n"),
		rx(replyQueued)), after: usable, login: true, relayed: 1},
	{name: "commands pipelined after the final dot", srv: srvPlain, steps: steps(inData,
		tx("Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n"), rxs(replyQueued, "250 2.0.0 Session reset", replyNoop)),
		after: usable, login: true, relayed: 1},
}

// newBadInputEnv starts passgate of kind srv in front of a sink that
// reports the end of its sessions; addr is where the client connects.
func newBadInputEnv(t *testing.T, srv string) (e *env, addr string, pool *x509.CertPool) {
	cfg, pool := testCert(t)
	e = newEnv(t, func(s *sink) { s.onLogout = make(chan struct{}, 16) }, func(s *Server) {
		switch srv {
		case srvPlain:
			s.TLSConfig = cfg
		case srvTLSRequired, srvImplicitTLS:
			s.TLSConfig, s.AllowCleartext = cfg, false
		case srvNoTLS:
		default:
			t.Fatalf("unknown server kind %q", srv)
		}
	})
	if srv == srvImplicitTLS {
		return e, startPassgate(t, e.pg, true), pool
	}
	return e, e.addr, pool
}

// dialBad connects to addr (with TLS for srvImplicitTLS) and reads the
// greeting.
func dialBad(t *testing.T, srv, addr string, pool *x509.CertPool) *badConn {
	t.Helper()
	if srv != srvImplicitTLS {
		return &badConn{textConn: dialText(t, addr), pool: pool}
	}
	d := &net.Dialer{Timeout: ioTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bc := &badConn{textConn: &textConn{t: t, c: c, tp: textproto.NewConn(c)}, pool: pool}
	bc.expect(220)
	return bc
}

func TestBadInput(t *testing.T) {
	if len(badInputs) < 40 {
		t.Fatalf("only %d bad inputs", len(badInputs))
	}
	for _, tt := range badInputs {
		t.Run(tt.name, func(t *testing.T) {
			e, addr, pool := newBadInputEnv(t, tt.srv)
			c := dialBad(t, tt.srv, addr, pool)
			c.run(tt.steps)
			switch tt.after {
			case usable:
				c.transactWant("NOOP", 250, "2.0.0 I have successfully done nothing")
			case closed:
				c.expectClosed()
			default:
				t.Fatalf("unknown state %q", tt.after)
			}
			c.c.Close()
			// Every upstream session has ended: a message not relayed
			// by now never will be.
			e.sink.waitAllUpstreamEnded(t)
			if msgs := e.sink.messages(); len(msgs) != tt.relayed {
				t.Errorf("the upstream accepted %d messages, want %d", len(msgs), tt.relayed)
			}
			if !tt.login {
				if n, auths := e.sink.accepts.Load(), e.sink.authsSeen(); n != 1 || len(auths) != 0 {
					t.Errorf("upstream dialled %d times (want only the probe), %d logins", n, len(auths))
				}
			}
			if logs := e.logs.String(); strings.Contains(logs, appSecret) {
				t.Errorf("the secret was logged:\n%s", logs)
			}
		})
	}
}

// hasBareLineEnd reports whether s holds a CR not followed by LF or an LF
// not preceded by CR.
func hasBareLineEnd(s string) bool {
	return strings.ContainsAny(strings.ReplaceAll(s, "\r\n", ""), "\r\n")
}

// TestDataSmuggling: end-of-data sequences other than CRLF.CRLF (RFC 5321
// §4.1.1.4), as in SMTP smuggling. A bare CR or LF refuses the message
// with 550 5.5.2 (as Postfix's smtpd_forbid_bare_newline does): the
// upstream transaction is aborted without the final dot, the upstream
// accepts nothing, never receives a bare CR or LF nor the smuggled
// envelope, and the session goes on. Sequences that leave no bare line end
// in what passgate relays do not end the message: the upstream gets one
// message with the smuggled commands inside.
func TestDataSmuggling(t *testing.T) {
	for _, tt := range []struct {
		end     string
		refused bool
	}{
		{"\n.\n", true},
		{"\r\n.\n", true},
		{"\n.\r\n", true},
		{"\r.\r\n", true},
		{"\r.\r", true},
		{"\n..\n", true},
		// go-smtp takes ".<CR>" at the start of a line for the start of
		// the end marker and drops both bytes when no LF follows: nothing
		// bare is left to relay.
		{"\r\n.\r", false},
		{"\r\n\x00.\r\n", false},
	} {
		t.Run(strings.NewReplacer("\r", "CR", "\n", "LF", "\x00", "NUL").Replace(tt.end), func(t *testing.T) {
			e := newEnv(t, nil, nil)
			c := &badConn{textConn: dialText(t, e.addr)}
			c.run(inData)
			c.sendRaw("Subject: smuggle\r\n\r\nfirst" + tt.end + "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>\r\n" +
				"DATA\r\nSubject: forged\r\n\r\n.\r\n")
			if !tt.refused {
				c.expectLine(replyQueued)
				c.transactWant("NOOP", 250, "")
				msgs := e.sink.messages()
				if len(msgs) != 1 {
					t.Fatalf("the upstream accepted %d messages, want 1", len(msgs))
				}
				m := msgs[0]
				if m.from != appUser || len(m.rcpts) != 1 || m.rcpts[0] != "bob@example.net" {
					t.Errorf("envelope %q -> %q", m.from, m.rcpts)
				}
				if !strings.Contains(string(m.data), "MAIL FROM:<evil@example.net>") || !strings.HasSuffix(string(m.data), "Subject: forged\r\n\r\n") {
					t.Errorf("the smuggled commands are not inside the message: %q", m.data)
				}
				if hasBareLineEnd(string(m.data)) {
					t.Errorf("the upstream received a bare CR or LF: %q", m.data)
				}
				return
			}
			c.expectLine(replyBareLineEnd)
			c.transactWant("NOOP", 250, "")
			// The session goes on: the next message is relayed on a new
			// upstream connection.
			c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
			c.transactWant("RCPT TO:<carol@example.net>", 250, "")
			c.transactWant("DATA", 354, "")
			c.transactWant("Subject: next\r\n\r\nok\r\n.", 250, "2.0.0 OK: queued")
			msgs := e.sink.messages()
			if len(msgs) != 1 || msgs[0].rcpts[0] != "carol@example.net" {
				t.Fatalf("the upstream accepted %+v, want only the next message", msgs)
			}
			for i, w := range e.sink.wire() {
				if hasBareLineEnd(w) || strings.Contains(w, "evil@example.net") {
					t.Errorf("upstream connection %d received %q", i, w)
				}
			}
		})
	}
}
