package imap

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
)

// step is one move of a bad-input transcript: bytes the client sends, a
// line it must read next (exactly), or an action.
type step struct {
	send string
	want string
	do   func(*client)
}

func send(s string) step         { return step{send: s} }
func want(s string) step         { return step{want: s} }
func do(f func(*client)) step    { return step{do: f} }
func wants(lines ...string) step { return step{do: expectLines(lines)} }

func expectLines(lines []string) func(*client) {
	return func(c *client) {
		c.t.Helper()
		for _, l := range lines {
			c.expect(l)
		}
	}
}

// halfClose shuts down the client's sending side (TCP FIN), as a client
// that dies mid-command or a half-open connection does.
func halfClose(c *client) {
	c.t.Helper()
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		c.t.Fatalf("CloseWrite: %v", err)
	}
}

// What the connection must be like after a bad input.
const (
	usable = "usable" // a following NOOP is answered OK
	closed = "closed" // the server closed it on purpose
)

// Server kinds the bad inputs run against.
const (
	srvPlain       = "cleartext allowed, STARTTLS offered"
	srvTLSRequired = "STARTTLS offered, cleartext refused"
	srvNoTLS       = "cleartext allowed, no TLS"
	srvImplicitTLS = "implicit TLS"
)

const (
	okNoop       = "a OK NOOP completed"
	noCreds      = "a NO [AUTHENTICATIONFAILED] Invalid credentials"
	logInFirst   = "a BAD Log in first"
	badLiteral   = "a BAD Invalid literal"
	tooBig       = "a BAD [TOOBIG] Literal too large"
	lineTooLong  = "* BAD [TOOBIG] Line too long"
	invalidTag   = "* BAD Invalid tag"
	badBase64    = "a BAD Invalid base64"
	badPlain     = "a BAD Malformed PLAIN response"
	canceled     = "a BAD Authentication canceled"
	unknownCmd   = "a BAD Unknown command"
	privacy      = "a NO [PRIVACYREQUIRED] TLS required: use STARTTLS"
	continueLit  = "+ Ready for literal data"
	plainCaps    = "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN AUTH=LOGIN"
	relayedOK    = "a OK [CAPABILITY " + upstreamCaps + "] Logged in as " + appUser
	pipelineJunk = "JUNK \x00\xff {5}\r\n* BAD [x] not ours\r\nb NOOP\r\n"
)

// maxLineCommand is a NOOP with a tag long enough to make the line n bytes
// long, CRLF included.
func maxLineCommand(n int) string {
	return strings.Repeat("t", n-len(" NOOP\r\n")) + " NOOP\r\n"
}

// badInputs are hostile or malformed inputs before login, each with the
// exact reply and what must become of the connection.
var badInputs = []struct {
	name  string
	srv   string
	steps []step
	after string
}{
	// Framing, tags and verbs (RFC 3501 §2.2.1, §9: tag = 1*<any
	// ASTRING-CHAR except "+">).
	{"empty line", srvPlain, []step{send("\r\n"), want("* BAD Empty command line")}, usable},
	{"bare LF empty line", srvPlain, []step{send("\n"), want("* BAD Empty command line")}, usable},
	{"only spaces", srvPlain, []step{send("   \r\n"), want(invalidTag)}, usable},
	{"missing tag: the verb is taken as the tag", srvPlain, []step{send("NOOP\r\n"), want("NOOP BAD Missing command")}, usable},
	{"leading space", srvPlain, []step{send(" a NOOP\r\n"), want(invalidTag)}, usable},
	{"tag +", srvPlain, []step{send("+ NOOP\r\n"), want(invalidTag)}, usable},
	{"tag with +", srvPlain, []step{send("a+b NOOP\r\n"), want(invalidTag)}, usable},
	{"tag *", srvPlain, []step{send("* NOOP\r\n"), want(invalidTag)}, usable},
	{"tag (", srvPlain, []step{send("( NOOP\r\n"), want(invalidTag)}, usable},
	{"tag with a literal", srvPlain, []step{send("a{1} NOOP\r\n"), want(invalidTag)}, usable},
	{"tag with %", srvPlain, []step{send("a% NOOP\r\n"), want(invalidTag)}, usable},
	{"quoted tag", srvPlain, []step{send("\"a\" NOOP\r\n"), want(invalidTag)}, usable},
	{"tab after the tag", srvPlain, []step{send("a\tNOOP\r\n"), want(invalidTag)}, usable},
	{"NUL in the tag", srvPlain, []step{send("a\x00 NOOP\r\n"), want(invalidTag)}, usable},
	{"tag with ] (valid)", srvPlain, []step{send("a] NOOP\r\n"), want("a] OK NOOP completed")}, usable},
	{"lower-case verb (valid)", srvPlain, []step{send("a noop\r\n"), want(okNoop)}, usable},
	{"mixed-case verb (valid)", srvPlain, []step{send("a NoOp\r\n"), want(okNoop)}, usable},
	{"mixed-case CAPABILITY (valid)", srvPlain, []step{send("a cApAbIlItY\r\n"), want(plainCaps), want("a OK CAPABILITY completed")}, usable},
	{"bare LF line end (accepted)", srvPlain, []step{send("a NOOP\n"), want(okNoop)}, usable},
	{"NUL after the verb", srvPlain, []step{send("a NOOP\x00\r\n"), want("a BAD NUL byte in command")}, usable},
	{"CR inside the verb", srvPlain, []step{send("a NO\rOP\r\n"), want(unknownCmd)}, usable},
	{"unknown verb", srvPlain, []step{send("a XYZZY\r\n"), want(unknownCmd)}, usable},
	{"8-bit verb", srvPlain, []step{send("a N\xc3\xa9OP\r\n"), want(unknownCmd)}, usable},
	{"arguments to NOOP", srvPlain, []step{send("a NOOP now\r\n"), want("a BAD Unexpected arguments")}, usable},
	{"line of exactly MaxLine bytes (accepted)", srvPlain, []step{send(maxLineCommand(proxy.DefaultMaxLine)),
		want(strings.TrimSuffix(maxLineCommand(proxy.DefaultMaxLine), " NOOP\r\n") + " OK NOOP completed")}, usable},
	{"line one byte over MaxLine", srvPlain, []step{send(maxLineCommand(proxy.DefaultMaxLine + 1)), want(lineTooLong)}, closed},
	{"64 KiB line", srvPlain, []step{send("a LOGIN " + strings.Repeat("x", 64<<10) + "\r\n"), want(lineTooLong)}, closed},
	{"long line without end", srvPlain, []step{send("a LOGIN " + strings.Repeat("x", 2*proxy.DefaultMaxLine)), want(lineTooLong)}, closed},

	// Literals (RFC 3501 §4.3, RFC 7888).
	{"synchronising literal too large", srvPlain, []step{send("a LOGIN {100000}\r\n"), want(tooBig)}, usable},
	{"largest literal size", srvPlain, []step{send("a LOGIN {4294967295}\r\n"), want(tooBig)}, usable},
	{"non-synchronising literal too large", srvPlain, []step{send("a LOGIN {100000+}\r\n"), want(tooBig)}, closed},
	{"literal size over 32 bits", srvPlain, []step{send("a LOGIN {4294967296}\r\n"), want(badLiteral)}, usable},
	{"literal {}", srvPlain, []step{send("a LOGIN {}\r\n"), want(badLiteral)}, usable},
	{"literal {-1}", srvPlain, []step{send("a LOGIN {-1}\r\n"), want(badLiteral)}, usable},
	{"literal {1x}", srvPlain, []step{send("a LOGIN {1x}\r\n"), want(badLiteral)}, usable},
	{"literal {+}", srvPlain, []step{send("a LOGIN {+}\r\n"), want(badLiteral)}, usable},
	{"literal of 20 digits", srvPlain, []step{send("a LOGIN {99999999999999999999}\r\n"), want(badLiteral)}, usable},
	{"literal {5}}", srvPlain, []step{send("a LOGIN {5}}\r\n"), want(badLiteral)}, usable},
	{"literal {{5}", srvPlain, []step{send("a LOGIN {{5}\r\n"), want(badLiteral)}, usable},
	{"literal not at the end of the line", srvPlain, []step{send("a LOGIN {5} secret\r\n"), want(badLiteral)}, usable},
	{"literal glued to an atom", srvPlain, []step{send("a LOGIN alice{5}\r\n"), want("a BAD Missing argument")}, usable},
	{"NUL inside a literal", srvPlain, []step{send("a LOGIN {5}\r\n"), want(continueLit), send("al\x00ce secret\r\n"),
		want("a BAD NUL byte in command")}, usable},
	{"literal, then no password", srvPlain, []step{send("a LOGIN {5}\r\n"), want(continueLit), send("alice\r\n"),
		want("a BAD Missing argument")}, usable},
	{"empty literals", srvPlain, []step{send("a LOGIN {0}\r\n"), want(continueLit), send(" {0}\r\n"), want(continueLit),
		send("\r\n"), want(noCreds)}, usable},
	{"synchronising literal of a refused command is not awaited", srvPlain, []step{send("a FOO {5}\r\n"), want(unknownCmd)}, usable},
	{"non-synchronising literal of a refused command is skipped, not run", srvPlain,
		[]step{send("a FOO {8+}\r\nb NOOP\r\n\r\n"), want(unknownCmd)}, usable},
	{"refused command announcing a huge non-synchronising literal", srvPlain, []step{send("a FOO {100000+}\r\n"), want(tooBig)}, closed},

	// Strings and LOGIN arguments (RFC 3501 §6.2.3).
	{"unterminated quoted string", srvPlain, []step{send("a LOGIN \"alice secret\r\n"), want("a BAD Unterminated quoted string")}, usable},
	{"bad escape in a quoted string", srvPlain, []step{send("a LOGIN \"al\\ice\" secret\r\n"), want("a BAD Invalid escape in quoted string")}, usable},
	{"NUL in a quoted string", srvPlain, []step{send("a LOGIN \"al\x00ice\" secret\r\n"), want("a BAD NUL byte in command")}, usable},
	{"LOGIN without arguments", srvPlain, []step{send("a LOGIN\r\n"), want("a BAD Missing argument")}, usable},
	{"LOGIN without password", srvPlain, []step{send("a LOGIN alice\r\n"), want("a BAD Missing argument")}, usable},
	{"LOGIN with three arguments", srvPlain, []step{send("a LOGIN alice secret extra\r\n"), want("a BAD Unexpected arguments")}, usable},
	{"LOGIN with two spaces", srvPlain, []step{send("a LOGIN  alice secret\r\n"), want("a BAD Expected a string")}, usable},
	{"invalid UTF-8 user name, quoted", srvPlain, []step{send("a LOGIN \"\xff\xfe\" secret\r\n"), want(noCreds)}, usable},
	{"invalid UTF-8 user name, atom", srvPlain, []step{send("a LOGIN al\xffice\xc3 secret\r\n"), want(noCreds)}, usable},

	// AUTHENTICATE (RFC 3501 §6.2.2, RFC 4616, RFC 4959).
	{"AUTHENTICATE without mechanism", srvPlain, []step{send("a AUTHENTICATE\r\n"), want("a BAD Missing argument")}, usable},
	{"unknown mechanism", srvPlain, []step{send("a AUTHENTICATE CRAM-MD5\r\n"), want("a NO Unsupported authentication mechanism")}, usable},
	{"unknown mechanism with an initial response", srvPlain, []step{send("a AUTHENTICATE XOAUTH2 " + b64("user=x") + "\r\n"),
		want("a NO Unsupported authentication mechanism")}, usable},
	{"invalid base64 initial response", srvPlain, []step{send("a AUTHENTICATE PLAIN AAA\r\n"), want(badBase64)}, usable},
	{"URL-safe base64 initial response", srvPlain, []step{send("a AUTHENTICATE PLAIN " +
		base64.URLEncoding.EncodeToString([]byte("\x00\xfb\xff\x00\xfe")) + "\r\n"), want(badBase64)}, usable},
	{"invalid base64 response", srvPlain, []step{send("a AUTHENTICATE PLAIN\r\n"), want("+ "), send("not base64!\r\n"), want(badBase64)}, usable},
	{"initial response with an extra argument", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("", appUser, appSecret) + " x\r\n"),
		want("a BAD Unexpected arguments")}, usable},
	{"PLAIN with 1 field", srvPlain, []step{send("a AUTHENTICATE PLAIN " + b64(appUser) + "\r\n"), want(badPlain)}, usable},
	{"PLAIN with 2 fields", srvPlain, []step{send("a AUTHENTICATE PLAIN " + b64(appUser+"\x00"+appSecret) + "\r\n"), want(badPlain)}, usable},
	{"PLAIN with 4 fields", srvPlain, []step{send("a AUTHENTICATE PLAIN " + b64("\x00"+appUser+"\x00"+appSecret+"\x00x") + "\r\n"), want(badPlain)}, usable},
	{"PLAIN with an empty user", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("", "", appSecret) + "\r\n"), want(noCreds)}, usable},
	{"PLAIN with an empty password", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("", appUser, "") + "\r\n"), want(noCreds)}, usable},
	{"PLAIN with a foreign authzid", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("bob@example.org", appUser, appSecret) + "\r\n"),
		want("a NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed")}, usable},
	{"PLAIN with invalid UTF-8 user name", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("", "\xff\xfe", appSecret) + "\r\n"),
		want(noCreds)}, usable},
	{"PLAIN with an empty response line", srvPlain, []step{send("a AUTHENTICATE PLAIN\r\n"), want("+ "), send("\r\n"), want(badPlain)}, usable},
	{"PLAIN canceled", srvPlain, []step{send("a AUTHENTICATE PLAIN\r\n"), want("+ "), send("*\r\n"), want(canceled)}, usable},
	{"LOGIN mechanism canceled at the password", srvPlain, []step{send("a AUTHENTICATE LOGIN " + b64(appUser) + "\r\n"),
		want("+ UGFzc3dvcmQ6"), send("*\r\n"), want(canceled)}, usable},
	{"LOGIN mechanism with invalid base64 password", srvPlain, []step{send("a AUTHENTICATE LOGIN\r\n"), want("+ VXNlcm5hbWU6"),
		send(b64(appUser) + "\r\n"), want("+ UGFzc3dvcmQ6"), send("%%%%\r\n"), want(badBase64)}, usable},
	{"SASL response longer than MaxLine", srvPlain, []step{send("a AUTHENTICATE PLAIN\r\n"), want("+ "),
		send(strings.Repeat("QUFB", proxy.DefaultMaxLine/4+1) + "\r\n"), want(lineTooLong)}, closed},

	// Commands in the wrong state (RFC 3501 §6.3, §6.4 need a login).
	{"SELECT before login", srvPlain, []step{send("a SELECT INBOX\r\n"), want(logInFirst)}, usable},
	{"FETCH before login", srvPlain, []step{send("a FETCH 1:* (FLAGS)\r\n"), want(logInFirst)}, usable},
	{"UID FETCH before login", srvPlain, []step{send("a UID FETCH 1:* (FLAGS)\r\n"), want(logInFirst)}, usable},
	{"IDLE before login", srvPlain, []step{send("a IDLE\r\n"), want(logInFirst)}, usable},
	{"APPEND with a synchronising literal before login", srvPlain, []step{send("a APPEND INBOX {11}\r\n"), want(logInFirst)}, usable},
	{"APPEND with a non-synchronising literal before login", srvPlain,
		[]step{send("a APPEND INBOX {13+}\r\nb LOGOUT\r\nabc\r\n"), want(logInFirst)}, usable},
	{"STARTTLS twice", srvPlain, []step{do((*client).startTLS), send("a STARTTLS\r\n"), want("a BAD TLS is already active")}, usable},
	{"STARTTLS on implicit TLS", srvImplicitTLS, []step{send("a STARTTLS\r\n"), want("a BAD TLS is already active")}, usable},
	{"STARTTLS with an argument", srvPlain, []step{send("a STARTTLS now\r\n"), want("a BAD Unexpected arguments")}, usable},
	{"STARTTLS with a pipelined command", srvPlain, []step{send("a STARTTLS\r\nb NOOP\r\n"), want("a BAD Data pipelined after STARTTLS")}, closed},
	{"STARTTLS without TLS configured", srvNoTLS, []step{send("a STARTTLS\r\n"), want("a BAD STARTTLS not available")}, usable},
	{"LOGIN before TLS", srvTLSRequired, []step{send("a LOGIN " + appUser + " " + appSecret + "\r\n"), want(privacy)}, usable},
	{"LOGIN with a literal before TLS: the secret is not awaited", srvTLSRequired, []step{send("a LOGIN {17}\r\n"), want(privacy)}, usable},
	{"AUTHENTICATE before TLS", srvTLSRequired, []step{send("a AUTHENTICATE PLAIN " + plainIR("", appUser, appSecret) + "\r\n"), want(privacy)}, usable},

	// Repeated failures, ID abuse, other protocols.
	{"three wrong logins pipelined", srvPlain, []step{send("a LOGIN " + appUser + " x\r\nb LOGIN " + appUser + " y\r\nc LOGIN " + appUser + " z\r\n"),
		wants(noCreds, "b NO [AUTHENTICATIONFAILED] Invalid credentials", "c NO [AUTHENTICATIONFAILED] Invalid credentials",
			"* BYE Too many failed logins")}, closed},
	{"ID with 31 fields", srvPlain, []step{send("a ID (" + strings.Repeat(`"k" "v" `, 30) + `"k" "v")` + "\r\n"), want("a BAD Too many ID fields")}, usable},
	{"ID that is not a list", srvPlain, []step{send("a ID foo\r\n"), want("a BAD Expected a list or NIL")}, usable},
	{"ID list not closed", srvPlain, []step{send("a ID (\"name\" \"x\"\r\n"), want("a BAD Missing argument")}, usable},
	{"ID with CRLF inside a literal (accepted, sanitised)", srvPlain, []step{send("a ID (\"name\" {5+}\r\nx\r\nyz)\r\n"),
		want(`* ID ("name" "passgate")`), want("a OK ID completed")}, usable},
	{"HTTP request", srvPlain, []step{send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
		wants("GET BAD Unknown command", "Host: BAD Unknown command", "* BAD Empty command line")}, usable},

	// Half-open connections: the client stops sending.
	{"half-close after a command", srvPlain, []step{send("a NOOP\r\n"), do(halfClose), want(okNoop)}, closed},
	{"half-close mid-line", srvPlain, []step{send("a NOO"), do(halfClose)}, closed},
	{"half-close inside a literal", srvPlain, []step{send("a LOGIN {5}\r\n"), want(continueLit), send("al"), do(halfClose)}, closed},
	{"half-close inside a SASL exchange", srvPlain, []step{send("a AUTHENTICATE PLAIN\r\n"), want("+ "), do(halfClose)}, closed},

	// Bytes pipelined after a successful login belong to the upstream:
	// passgate must pass them on untouched, not parse them.
	{"junk pipelined after LOGIN", srvPlain, []step{send("a LOGIN " + appUser + " " + appSecret + "\r\n" + pipelineJunk),
		want(relayedOK)}, "relayed"},
	{"junk pipelined after AUTHENTICATE PLAIN", srvPlain, []step{send("a AUTHENTICATE PLAIN " + plainIR("", appUser, appSecret) + "\r\n" + pipelineJunk),
		want(relayedOK)}, "relayed"},
}

func TestBadInput(t *testing.T) {
	if len(badInputs) < 50 {
		t.Fatalf("only %d bad inputs", len(badInputs))
	}
	envs := map[string]*env{
		srvPlain:       newEnv(t, cleartext, withTLS),
		srvTLSRequired: newEnv(t, withTLS),
		srvNoTLS:       newEnv(t, cleartext),
	}
	envs[srvImplicitTLS] = envs[srvPlain]
	for _, tt := range badInputs {
		t.Run(tt.name, func(t *testing.T) {
			e := *envs[tt.srv]
			e.t = t
			var c *client
			if tt.srv == srvImplicitTLS {
				c = e.greetedTLS()
			} else {
				c = e.greeted()
			}
			for _, s := range tt.steps {
				switch {
				case s.do != nil:
					s.do(c)
				case s.send != "":
					c.send(s.send)
				default:
					c.expect(s.want)
				}
			}
			switch tt.after {
			case usable:
				c.expectTagged("x", "NOOP", "x OK NOOP completed")
			case closed:
				c.expectClosed()
			case "relayed":
				c.expect("* 3 EXISTS")
				peer := e.peer(t)
				got := make([]byte, len(pipelineJunk))
				peer.conn.SetReadDeadline(deadline())
				if _, err := io.ReadFull(peer.r, got); err != nil || string(got) != pipelineJunk {
					t.Fatalf("upstream got %q (%v), want the pipelined bytes %q", got, err, pipelineJunk)
				}
				peer.send("* BYE bye\r\n")
				peer.conn.Close()
				c.expect("* BYE bye")
				c.expectClosed()
			default:
				t.Fatalf("unknown state %q", tt.after)
			}
		})
	}
}

// TestPreauthCommandLimit: a connection gets MaxPreauthCommands commands
// (malformed ones included) before it logs in; the next one ends it.
func TestPreauthCommandLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int // Server.Limits.MaxPreauthCommands
		want  int // commands answered
	}{
		{"default", 0, proxy.DefaultMaxPreauthCommands},
		{"configured", 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxPreauthCommands = tt.limit })
			c := e.greeted()
			var b strings.Builder
			for i := range tt.want + 5 {
				if i%10 == 9 {
					b.WriteString("\r\n") // malformed commands count too
				} else {
					fmt.Fprintf(&b, "n%d NOOP\r\n", i)
				}
			}
			c.send(b.String())
			for i := range tt.want {
				if i%10 == 9 {
					c.expect("* BAD Empty command line")
				} else {
					c.expect(fmt.Sprintf("n%d OK NOOP completed", i))
				}
			}
			c.expect("* BYE Too many commands before login")
			c.expectClosed()
		})
	}
	t.Run("LOGIN as the last allowed command", func(t *testing.T) {
		e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxPreauthCommands = 3 })
		c := e.greeted()
		c.expectTagged("n1", "NOOP", "n1 OK")
		c.expectTagged("n2", "NOOP", "n2 OK")
		c.expectTagged("a", "LOGIN "+appUser+" "+appSecret, "a OK ")
		peer := e.peer(t)
		// After login the limit is the upstream's business.
		for i := range 5 {
			c.send(fmt.Sprintf("r%d NOOP\r\n", i))
			peer.expect(fmt.Sprintf("r%d NOOP", i))
		}
	})
}

// TestPipelinedCapabilities: 1000 commands in one write are all answered,
// in order.
func TestPipelinedCapabilities(t *testing.T) {
	const n = 1000
	e := newEnv(t, cleartext, withTLS, func(s *Server) { s.Limits.MaxPreauthCommands = n + 1 })
	c := e.greeted()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "c%d CAPABILITY\r\n", i)
	}
	sent := make(chan error, 1)
	go func() {
		c.conn.SetWriteDeadline(deadline())
		_, err := io.WriteString(c.conn, b.String())
		sent <- err
	}()
	for i := range n {
		c.expect(plainCaps)
		c.expect(fmt.Sprintf("c%d OK CAPABILITY completed", i))
	}
	if err := <-sent; err != nil {
		t.Fatalf("write: %v", err)
	}
	c.expectTagged("x", "NOOP", "x OK NOOP completed")
}

// recordingConn keeps every byte read through it.
type recordingConn struct {
	net.Conn
	got []byte
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, err
}

// TestTLSOnPlainPort: a client set up for implicit TLS talks to the plain
// port. Its handshake fails on our greeting; passgate sees the ClientHello,
// says BYE and closes instead of waiting for a command line.
func TestTLSOnPlainPort(t *testing.T) {
	e := newEnv(t, cleartext, withTLS)
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rec := &recordingConn{Conn: raw}
	tc := tls.Client(rec, testcert.ClientConfig("localhost"))
	tc.SetDeadline(deadline())
	err = tc.Handshake()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("TLS handshake with the plain port: %v, want a failure at once", err)
	}
	raw.SetReadDeadline(deadline())
	_, err = io.Copy(io.Discard, rec)
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("passgate kept the connection open after the ClientHello (read %q)", rec.got)
	}
	got := string(rec.got)
	const bye = "* BYE TLS handshake on a plain connection: use implicit TLS or STARTTLS\r\n"
	if !strings.HasPrefix(got, "* OK [CAPABILITY ") || !strings.HasSuffix(got, "ready\r\n"+bye) {
		t.Fatalf("the client received %q, want the greeting and %q", got, bye)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "started TLS on a plain connection") {
		t.Errorf("not logged:\n%s", logs)
	}
	e.greeted().expectTagged("x", "NOOP", "x OK NOOP completed")
}

// TestClientThatNeverReads: a client sends command after command and
// never reads a reply. passgate does not queue replies: it stops reading
// while a reply cannot be written and drops the client when the write
// deadline (PreauthTimeout) passes, long before the bounded flood is sent
// (each reply echoes an 8000-byte tag: 80 MB, more than any socket buffer).
// Other clients are served meanwhile.
func TestClientThatNeverReads(t *testing.T) {
	const commands = 10000
	e := newEnv(t, cleartext, func(s *Server) {
		s.Limits.MaxPreauthCommands = 2 * commands
		s.Limits.PreauthTimeout = time.Second
	})
	c := e.greeted()
	cmd := []byte(strings.Repeat("t", 8000) + " NOOP\r\n")
	sent := make(chan error, 1)
	var written int
	go func() {
		for range commands {
			c.conn.SetWriteDeadline(deadline())
			n, err := c.conn.Write(cmd)
			written += n
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	e.greeted().expectTagged("o1", "NOOP", "o1 OK NOOP completed")
	err := <-sent
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("all %d commands (%d MB) were accepted without a reply being read", commands, commands*len(cmd)>>20)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("passgate neither read nor dropped the client: %v", err)
	}
	t.Logf("dropped after %d KB of commands: %v", written>>10, err)
	e.greeted().expectTagged("o2", "NOOP", "o2 OK NOOP completed")
}
