package pop3

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/goleak"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

func TestMain(m *testing.M) {
	testleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(proxy.PollerFunction))
}

type env struct {
	srv  *Server
	auth *lt.Auth
	up   *lt.Upstream
	addr string
}

// newEnv serves POP3 with STLS on 127.0.0.1:0; opts adjust the server.
func newEnv(t *testing.T, opts ...func(*Server)) *env {
	t.Helper()
	e := &env{auth: &lt.Auth{}, up: &lt.Upstream{Text: "Logged in."}}
	e.srv = &Server{Auth: e.auth, Upstream: e.up, TLSConfig: testcert.ServerConfig(),
		MFAMessage: "Use an app password", Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e.srv)
	}
	e.addr = lt.Serve(t, e.srv)
	return e
}

func cleartext(s *Server) { s.AllowCleartext = true }

func (e *env) dial(t *testing.T) *lt.Client {
	c := lt.Dial(t, e.addr)
	c.Expect("+OK passgate ready")
	return c
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSTLSThenUserPass: without TLS and cleartext off, CAPA offers only
// STLS and USER is refused; after STLS the login is offered, succeeds
// with the upstream's text and the session is spliced both ways.
func TestSTLSThenUserPass(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	c.Send("CAPA")
	c.Expect("+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		"STLS", "IMPLEMENTATION passgate", ".")
	if r := c.Cmd("USER " + lt.AppUser); r != "-ERR [AUTH] Plaintext login disallowed: use STLS or port 995" {
		t.Fatalf("USER before STLS: %q", r)
	}
	if r := c.Cmd("STLS"); r != "+OK Begin TLS negotiation now" {
		t.Fatalf("STLS: %q", r)
	}
	c.StartTLS()
	c.Send("CAPA")
	c.Expect("+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		"USER", "SASL PLAIN LOGIN", "IMPLEMENTATION passgate", ".")
	if r := c.Cmd("USER " + lt.AppUser); r != "+OK Send your password" {
		t.Fatalf("USER: %q", r)
	}
	if r := c.Cmd("PASS " + lt.AppSecret); r != "+OK Logged in." {
		t.Fatalf("PASS: %q", r)
	}
	a := e.auth.Attempts()
	if len(a) != 1 || a[0].Protocol != store.ScopePOP3 || a[0].Mechanism != "USER" || a[0].TLS == "" {
		t.Fatalf("attempts %+v, want one POP3 USER attempt over TLS", a)
	}
	up := e.up.Peer(t)
	c.Send("STAT")
	up.Expect("STAT")
	up.Send("+OK 2 320")
	c.Expect("+OK 2 320")
}

// TestAuthMechanisms: AUTH PLAIN and LOGIN, with and without initial
// responses, log in; AUTH alone lists the mechanisms.
func TestAuthMechanisms(t *testing.T) {
	e := newEnv(t, cleartext)
	plain := b64("\x00" + lt.AppUser + "\x00" + lt.AppSecret)
	for name, steps := range map[string][][2]string{
		"PLAIN with initial response": {{"AUTH PLAIN " + plain, "+OK Logged in."}},
		"PLAIN":                       {{"AUTH PLAIN", "+ "}, {plain, "+OK Logged in."}},
		"LOGIN":                       {{"AUTH LOGIN", "+ VXNlcm5hbWU6"}, {b64(lt.AppUser), "+ UGFzc3dvcmQ6"}, {b64(lt.AppSecret), "+OK Logged in."}},
		"LOGIN with initial response": {{"AUTH LOGIN " + b64(lt.AppUser), "+ UGFzc3dvcmQ6"}, {b64(lt.AppSecret), "+OK Logged in."}},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dial(t)
			c.Send("AUTH")
			c.Expect("+OK", "PLAIN", "LOGIN", ".")
			for _, s := range steps {
				if r := c.Cmd(s[0]); r != s[1] {
					t.Fatalf("%q: got %q, want %q", s[0], r, s[1])
				}
			}
			e.up.Peer(t)
		})
	}
}

// TestRefusals: each failed login gets its RFC 3206 reply, no upstream
// login is tried before an OK decision, and the third failure closes the
// connection.
func TestRefusals(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxFailedLogins = 3 })
	c := e.dial(t)
	for _, s := range [][2]string{
		{"PASS x", "-ERR USER first"},
		{"APOP " + lt.AppUser + " 0123456789abcdef0123456789abcdef", "-ERR [AUTH] APOP is not supported: use USER and PASS or AUTH with an app password"},
		{"RETR 1", "-ERR Log in first"},
		{"XYZZY", "-ERR Unknown command"},
		{"AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism"},
		{"AUTH PLAIN !!!", "-ERR Invalid base64"},
		{"AUTH PLAIN " + b64("bob@example.org\x00"+lt.AppUser+"\x00"+lt.AppSecret), "-ERR [AUTH] Logging in as another user is not allowed"},
		{"AUTH PLAIN " + b64("\x00"+lt.MFAUser+"\x00"+lt.MFASecret), "-ERR [AUTH] Use an app password"},
	} {
		if r := c.Cmd(s[0]); r != s[1] {
			t.Fatalf("%q: got %q, want %q", s[0], r, s[1])
		}
	}
	c.Send("USER " + lt.AppUser)
	c.Expect("+OK Send your password")
	if r := c.Cmd("PASS wrong"); r != "-ERR [AUTH] Invalid credentials" {
		t.Fatalf("third failure: %q", r)
	}
	if !c.Closed() {
		t.Fatal("the connection stayed open after three failed logins")
	}
	if l := e.up.Logins(); len(l) != 0 {
		t.Fatalf("upstream logins %v after refusals only", l)
	}

	c = e.dial(t)
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+lt.DownUser+"\x00"+lt.AppSecret)); r != "-ERR [SYS/TEMP] Mail server unavailable, try again later" {
		t.Fatalf("upstream down: %q", r)
	}
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+lt.BrokenUser+"\x00x")); r != "-ERR [SYS/TEMP] Authentication service unavailable, try again later" {
		t.Fatalf("authenticator failing: %q", r)
	}
}

// TestSTLSPipelined: bytes after STLS in the same packet refuse it and
// close the connection, so plaintext cannot be injected into the TLS
// session.
func TestSTLSPipelined(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	c.Send("STLS\r\nUSER " + lt.AppUser)
	if r := c.Line(); r != "-ERR Data pipelined after STLS" {
		t.Fatalf("got %q", r)
	}
	if !c.Closed() {
		t.Fatal("the connection stayed open")
	}
}

// TestLongLineAndCancel: an over-long line ends the connection; "*"
// cancels a SASL exchange.
func TestLongLineAndCancel(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxLine = 128 })
	c := e.dial(t)
	c.Send("AUTH LOGIN")
	c.Expect("+ VXNlcm5hbWU6")
	if r := c.Cmd("*"); r != "-ERR Authentication canceled" {
		t.Fatalf("cancel: %q", r)
	}
	if r := c.Cmd("USER " + strings.Repeat("a", 200)); r != "-ERR Line too long" {
		t.Fatalf("long line: %q", r)
	}
	if !c.Closed() {
		t.Fatal("the connection stayed open")
	}
}
