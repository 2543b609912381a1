package sieve

import (
	"encoding/base64"
	"fmt"
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

// upstreamCaps is what the fake upstream announces; passgate keeps the
// Sieve extensions and answers IMPLEMENTATION, SASL and STARTTLS itself.
var upstreamCaps = []string{`"IMPLEMENTATION" "Dovecot Pigeonhole"`, `"SIEVE" "fileinto vacation"`,
	`"NOTIFY" "mailto"`, `"SASL" "PLAIN OAUTHBEARER"`, `"STARTTLS"`}

// newEnv serves ManageSieve with STARTTLS on 127.0.0.1:0.
func newEnv(t *testing.T, opts ...func(*Server)) *env {
	t.Helper()
	e := &env{auth: &lt.Auth{}, up: &lt.Upstream{Caps: upstreamCaps}}
	e.srv = &Server{Auth: e.auth, Upstream: e.up, TLSConfig: testcert.ServerConfig(),
		MFAMessage: "Use an app password", Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e.srv)
	}
	e.addr = lt.Serve(t, e.srv)
	return e
}

func cleartext(s *Server) { s.AllowCleartext = true }

// greeting is the capability response for sasl ("" before TLS with
// cleartext off) and STARTTLS offered or not.
func greeting(sasl string, starttls bool) []string {
	g := []string{`"IMPLEMENTATION" "passgate"`, `"SASL" "` + sasl + `"`, `"SIEVE" "fileinto vacation"`, `"NOTIFY" "mailto"`}
	if starttls {
		g = append(g, `"STARTTLS"`)
	}
	return append(g, `"VERSION" "1.0"`, `OK "passgate ready"`)
}

func (e *env) dial(t *testing.T, sasl string) *lt.Client {
	c := lt.Dial(t, e.addr)
	c.Expect(greeting(sasl, true)...)
	return c
}

func plain(authzid, user, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + secret))
}

// TestSTARTTLSThenAuthenticate: before TLS no mechanism is offered and
// AUTHENTICATE is refused with ENCRYPT-NEEDED; STARTTLS resends the
// capabilities with PLAIN and LOGIN; a login by literal succeeds and the
// session is spliced both ways.
func TestSTARTTLSThenAuthenticate(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, "")
	if r := c.Cmd(`AUTHENTICATE "PLAIN" "` + plain("", lt.AppUser, lt.AppSecret) + `"`); r != `NO (ENCRYPT-NEEDED) "Use STARTTLS first"` {
		t.Fatalf("AUTHENTICATE before STARTTLS: %q", r)
	}
	if r := c.Cmd("STARTTLS"); r != `OK "Begin TLS negotiation now"` {
		t.Fatalf("STARTTLS: %q", r)
	}
	c.StartTLS()
	c.Expect(greeting("PLAIN LOGIN", false)...)
	ir := plain("", lt.AppUser, lt.AppSecret)
	c.Send(fmt.Sprintf(`AUTHENTICATE "PLAIN" {%d+}`, len(ir)))
	if r := c.Cmd(ir); r != `OK "Logged in"` {
		t.Fatalf("AUTHENTICATE by literal: %q", r)
	}
	a := e.auth.Attempts()
	if len(a) != 1 || a[0].Protocol != store.ScopeSieve || a[0].Username != lt.AppUser || a[0].TLS == "" {
		t.Fatalf("attempts %+v, want one sieve attempt over TLS", a)
	}
	up := e.up.Peer(t)
	c.Send("LISTSCRIPTS")
	up.Expect("LISTSCRIPTS")
	up.Send(`"vacation" ACTIVE`)
	up.Send(`OK "Listscripts completed."`)
	c.Expect(`"vacation" ACTIVE`, `OK "Listscripts completed."`)
}

// TestAuthenticateLogin: LOGIN prompts as quoted base64 strings.
func TestAuthenticateLogin(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.dial(t, "PLAIN LOGIN")
	b64 := base64.StdEncoding.EncodeToString
	for _, s := range [][2]string{
		{`AUTHENTICATE "LOGIN"`, `"VXNlcm5hbWU6"`},
		{`"` + b64([]byte(lt.AppUser)) + `"`, `"UGFzc3dvcmQ6"`},
		{`"` + b64([]byte(lt.AppSecret)) + `"`, `OK "Logged in"`},
	} {
		if r := c.Cmd(s[0]); r != s[1] {
			t.Fatalf("%q: got %q, want %q", s[0], r, s[1])
		}
	}
	e.up.Peer(t)
}

// TestRefusals: the non-authenticated state's replies; no upstream login
// before an OK decision; the third failed login ends with BYE.
func TestRefusals(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxFailedLogins = 3 })
	c := e.dial(t, "PLAIN LOGIN")
	for _, s := range [][2]string{
		{"NOOP", `OK "Done"`},
		{`NOOP "STARTTLS-SYNC-42"`, `OK (TAG "STARTTLS-SYNC-42") "Done"`},
		{"LISTSCRIPTS", `NO "Log in first, or unknown command"`},
		{`AUTHENTICATE "CRAM-MD5"`, `NO "Unsupported authentication mechanism"`},
		{`AUTHENTICATE "PLAIN" "!!!"`, `NO "Invalid base64"`},
		{`AUTHENTICATE "PLAIN" "unterminated`, `NO "Syntax error"`},
		{`AUTHENTICATE "LOGIN"`, `"VXNlcm5hbWU6"`},
		{`"*"`, `NO "Authentication canceled"`},
		{`AUTHENTICATE "PLAIN" "` + plain("bob@example.org", lt.AppUser, lt.AppSecret) + `"`, `NO "Logging in as another user is not allowed"`},
		{`AUTHENTICATE "PLAIN" "` + plain("", lt.MFAUser, lt.MFASecret) + `"`, `NO "Use an app password"`},
	} {
		if r := c.Cmd(s[0]); r != s[1] {
			t.Fatalf("%q: got %q, want %q", s[0], r, s[1])
		}
	}
	if r := c.Cmd(`AUTHENTICATE "PLAIN" "` + plain("", lt.AppUser, "wrong") + `"`); r != `BYE "Invalid credentials"` {
		t.Fatalf("third failure: %q", r)
	}
	if !c.Closed() {
		t.Fatal("the connection stayed open after three failed logins")
	}
	if l := e.up.Logins(); len(l) != 0 {
		t.Fatalf("upstream logins %v after refusals only", l)
	}
	c = e.dial(t, "PLAIN LOGIN")
	if r := c.Cmd(`AUTHENTICATE "PLAIN" "` + plain("", lt.DownUser, lt.AppSecret) + `"`); r != `NO (TRYLATER) "Service unavailable, try again later"` {
		t.Fatalf("upstream down: %q", r)
	}
	if r := c.Cmd("LOGOUT"); r != `OK "Bye"` {
		t.Fatalf("LOGOUT: %q", r)
	}
}

// TestLimits: an over-long line, a literal over MaxLiteral and data
// pipelined after STARTTLS end the connection with BYE.
func TestLimits(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxLine = 128; s.Limits.MaxLiteral = 64 })
	for name, tc := range map[string][2]string{
		"long line":         {`AUTHENTICATE "PLAIN" "` + strings.Repeat("a", 200) + `"`, `BYE "Line too long"`},
		"literal too large": {`AUTHENTICATE "PLAIN" {65+}`, `BYE "Literal too large"`},
		"pipelined":         {"STARTTLS\r\nNOOP", `BYE "Data pipelined after STARTTLS"`},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dial(t, "PLAIN LOGIN")
			if r := c.Cmd(tc[0]); r != tc[1] {
				t.Fatalf("got %q, want %q", r, tc[1])
			}
			if !c.Closed() {
				t.Fatal("the connection stayed open")
			}
		})
	}
}
