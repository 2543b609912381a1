package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	accountsvc "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/pop3"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
)

// lineGate is an in-process passgate for a line protocol (POP3,
// ManageSieve) in front of the test Dovecot: a real bolt store, Verifier,
// Guard (limits and tarpit) and sessions registry, as `passgate serve`
// wires them.
type lineGate struct {
	st       *bolt.DB
	accounts *accountsvc.Service
	guard    *authn.Guard
	reg      *sessions.Registry
	certFile string
	tls      *tls.Config
	user     string // a Dovecot user with an app password
	appPW    string
	primary  string
}

// newLineGate makes the store, the auth pipeline and a user whose app
// password is scoped to scopes.
func newLineGate(t *testing.T, d *Dovecot, scopes ...store.Scope) *lineGate {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := &authn.Verifier{Store: db, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}, Logger: quiet}
	g := &lineGate{st: db, accounts: &accountsvc.Service{Store: db, Verifier: v, Logger: quiet}}
	g.guard = &authn.Guard{Verifier: v, Counters: &memcount.Counters{}, Logger: quiet}
	g.reg = &sessions.Registry{Store: db, Cache: &authn.Cache{}, RecheckInterval: time.Hour, Logger: quiet}
	wctx, cancel := context.WithCancel(ctx)
	watched, err := g.reg.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-watched })
	g.user, g.primary = d.newUser(t)
	if err := g.accounts.CreateUser(ctx, testActor, accountsvc.NewUser{Username: g.user, Password: g.primary, MFA: true}); err != nil {
		t.Fatal(err)
	}
	np, err := g.accounts.CreateAppPassword(ctx, testActor, g.user, "phone", accountsvc.AppPasswordOptions{Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	g.appPW = np.Password
	var key string
	g.certFile, key = testcert.Write(t, t.TempDir(), "pg-")
	cert, err := tls.LoadX509KeyPair(g.certFile, key)
	if err != nil {
		t.Fatal(err)
	}
	g.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	return g
}

// pop3Gate is passgate's POP3 front-end serving plain (STLS and cleartext
// allowed) and implicit TLS.
type pop3Gate struct {
	*lineGate
	addr, tlsAddr string
	srv           *pop3.Server
}

func requirePOP3(t *testing.T, d *Dovecot) {
	t.Helper()
	if d.POP3Addr == "" {
		testtool.Missing(t, "Dovecot's pop3 is not installed (Debian package dovecot-pop3d)")
	}
}

func startPOP3Gate(t *testing.T, d *Dovecot, limits proxy.Limits, tune ...func(*lineGate)) *pop3Gate {
	t.Helper()
	requirePOP3(t, d)
	g := &pop3Gate{lineGate: newLineGate(t, d, store.ScopePOP3)}
	for _, f := range tune {
		f(g.lineGate)
	}
	g.srv = &pop3.Server{
		Auth: g.guard,
		Upstream: upstream.Config{Address: d.POP3Addr, MasterUser: masterUser, MasterSecret: masterSecret,
			Mode: upstream.ModeMaster}.POP3(),
		Sessions:       g.reg,
		Limits:         limits,
		TLSConfig:      g.tls,
		AllowCleartext: true,
		MFAMessage:     proxy.MFAText("", "https://portal.example.org"),
		Logger:         slog.New(slog.DiscardHandler),
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr, g.tlsAddr = plain.Addr().String(), tlsLn.Addr().String()
	done := make(chan struct{}, 2)
	go func() { g.srv.Serve(plain); done <- struct{}{} }()
	go func() { g.srv.ServeTLS(tlsLn); done <- struct{}{} }()
	t.Cleanup(func() { g.srv.Close(); <-done; <-done })
	return g
}

// popConn is a raw POP3 client for transcripts.
type popConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPOP3(t *testing.T, addr string) *popConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &popConn{t: t, c: c, r: bufio.NewReader(c)}
	if g := p.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	return p
}

func (p *popConn) line() string {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends line and returns the status line.
func (p *popConn) cmd(line string) string {
	p.t.Helper()
	if _, err := p.c.Write([]byte(line + "\r\n")); err != nil {
		p.t.Fatal(err)
	}
	return p.line()
}

// closed reports whether the server closed the connection (EOF or reset
// before ioTimeout).
func (p *popConn) closed() bool {
	p.c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := p.r.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func plainIR(authzid, user, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + secret))
}

// TestPOP3Dovecot: logins through passgate reach the user's real Dovecot
// mailbox (master user), with the replies a POP3 user sees for bad
// credentials, the MFA refusal and a scope the app password lacks.
func TestPOP3Dovecot(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{})
	d.deliver(t, g.user, testMessage(g.user, "pop3 through passgate", "hello over pop3"))

	t.Run("USER/PASS", func(t *testing.T) {
		p := dialPOP3(t, g.addr)
		if r := p.cmd("USER " + g.user); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("USER: %q", r)
		}
		if r := p.cmd("PASS " + g.appPW); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("PASS: %q", r)
		}
		if r := p.cmd("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
			t.Fatalf("STAT: %q, want one message", r)
		}
		if r := p.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("QUIT: %q", r)
		}
	})
	t.Run("AUTH PLAIN with initial response", func(t *testing.T) {
		p := dialPOP3(t, g.addr)
		if r := p.cmd("AUTH PLAIN " + plainIR("", g.user, g.appPW)); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("AUTH: %q", r)
		}
		if r := p.cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("RETR: %q", r)
		}
		var body strings.Builder
		for l := p.line(); l != "."; l = p.line() {
			body.WriteString(l + "\n")
		}
		if !strings.Contains(body.String(), "hello over pop3") {
			t.Fatalf("RETR body lacks the message:\n%s", body.String())
		}
	})
	t.Run("AUTH LOGIN", func(t *testing.T) {
		p := dialPOP3(t, g.addr)
		b64 := base64.StdEncoding.EncodeToString
		if r := p.cmd("AUTH LOGIN"); r != "+ VXNlcm5hbWU6" {
			t.Fatalf("AUTH LOGIN: %q", r)
		}
		if r := p.cmd(b64([]byte(g.user))); r != "+ UGFzc3dvcmQ6" {
			t.Fatalf("username: %q", r)
		}
		if r := p.cmd(b64([]byte(g.appPW))); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("password: %q", r)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		p := dialPOP3(t, g.addr)
		p.cmd("USER " + g.user)
		if r := p.cmd("PASS wrong-secret"); r != "-ERR [AUTH] Invalid credentials" {
			t.Errorf("bad secret: %q", r)
		}
		p.cmd("USER " + g.user)
		if r := p.cmd("PASS " + g.primary); r != "-ERR [AUTH] Application password required: create one at https://portal.example.org" {
			t.Errorf("primary password of an MFA account: %q", r)
		}
		if r := p.cmd("APOP " + g.user + " 0123456789abcdef0123456789abcdef"); !strings.HasPrefix(r, "-ERR [AUTH] APOP is not supported") {
			t.Errorf("APOP: %q", r)
		}
	})
}

// TestPOP3ScopeDenied: an app password without the pop3 scope does not
// open POP3.
func TestPOP3ScopeDenied(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{})
	np, err := g.accounts.CreateAppPassword(context.Background(), testActor, g.user, "imap only",
		accountsvc.AppPasswordOptions{Scopes: []store.Scope{store.ScopeIMAP}})
	if err != nil {
		t.Fatal(err)
	}
	p := dialPOP3(t, g.addr)
	if r := p.cmd("AUTH PLAIN " + plainIR("", g.user, np.Password)); r != "-ERR [AUTH] Invalid credentials" {
		t.Errorf("imap-only app password over POP3: %q", r)
	}
}

// TestPOP3BadInput: bad input gets a clear -ERR and, where the stream
// cannot go on or a limit is reached, the connection ends.
func TestPOP3BadInput(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{MaxLine: 512, MaxFailedLogins: 3})
	cases := []struct {
		name   string
		send   []string
		want   string // the last reply
		closed bool
	}{
		{"long line", []string{"USER " + strings.Repeat("a", 600)}, "-ERR Line too long", true},
		{"bad base64 initial response", []string{"AUTH PLAIN !!!"}, "-ERR Invalid base64", false},
		{"bad base64 response", []string{"AUTH PLAIN", "***notbase64"}, "-ERR Invalid base64", false},
		{"cancel", []string{"AUTH LOGIN", "*"}, "-ERR Authentication canceled", false},
		{"malformed PLAIN", []string{"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("no-nuls"))}, "-ERR Malformed PLAIN response", false},
		{"PASS before USER", []string{"PASS x"}, "-ERR USER first", false},
		{"transaction command before login", []string{"RETR 1"}, "-ERR Log in first", false},
		{"other user as authzid", []string{"AUTH PLAIN " + plainIR("bob@example.org", g.user, g.appPW)},
			"-ERR [AUTH] Logging in as another user is not allowed", false},
		{"unknown mechanism", []string{"AUTH CRAM-MD5"}, "-ERR Unsupported authentication mechanism", false},
		{"too many failures", []string{"PASS x", "USER u", "PASS x", "USER u", "PASS x", "USER u", "PASS x"}, "-ERR [AUTH] Invalid credentials", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dialPOP3(t, g.addr)
			var r string
			for _, l := range tc.send {
				r = p.cmd(l)
			}
			if r != tc.want {
				t.Errorf("reply %q, want %q", r, tc.want)
			}
			if tc.closed {
				if !p.closed() {
					t.Error("the connection stayed open")
				}
			} else if r := p.cmd("QUIT"); r != "+OK Bye" {
				t.Errorf("QUIT after the error: %q, want +OK Bye", r)
			}
		})
	}
}

// TestPOP3RevokeEndsSession: revoking the app password ends a relayed
// POP3 session.
func TestPOP3RevokeEndsSession(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{})
	p := dialPOP3(t, g.addr)
	if r := p.cmd("AUTH PLAIN " + plainIR("", g.user, g.appPW)); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("AUTH: %q", r)
	}
	if _, err := g.accounts.RevokeAppPassword(context.Background(), testActor, g.user, "phone"); err != nil {
		t.Fatal(err)
	}
	if !p.closed() {
		t.Fatal("the session outlived the revocation")
	}
}

// TestPOP3Clients: real clients fetch through passgate.
func TestPOP3Clients(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{})
	d.deliver(t, g.user, testMessage(g.user, "for real clients", "fetched by a real client"))
	python := requireTool(t, "/usr/bin/python3")
	curl := requireTool(t, "curl")
	host, port, _ := net.SplitHostPort(g.addr)
	_, tlsPort, _ := net.SplitHostPort(g.tlsAddr)

	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	script := `
import poplib, ssl, sys, base64
host, port, tlsport, user, pw, ca = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
# USER/PASS after STLS
p = poplib.POP3(host, int(port), timeout=30)
p.stls(context=ctx)
p.user(user); p.pass_(pw)
n, _ = p.stat()
body = b"\n".join(p.retr(n)[1])
assert b"fetched by a real client" in body, body
p.quit()
# AUTH PLAIN over implicit TLS
p = poplib.POP3_SSL(host, int(tlsport), context=ctx, timeout=30)
resp = p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode())
assert resp.startswith(b"+OK"), resp
print("messages", p.stat()[0])
p.quit()
print("ok")
`
	t.Run("python poplib", func(t *testing.T) {
		out := run(t, python, "-c", script, host, port, tlsPort, g.user, g.appPW, g.certFile)
		if !strings.Contains(out, "ok") {
			t.Fatalf("poplib: %s", out)
		}
	})
	for _, u := range []struct{ name, url string }{
		{"curl pop3 STLS", "pop3://localhost:" + port + "/1"},
		{"curl pop3s", "pop3s://localhost:" + tlsPort + "/1"},
	} {
		t.Run(u.name, func(t *testing.T) {
			out := run(t, curl, "-sS", "--ssl-reqd", "--cacert", g.certFile, "--login-options", "AUTH=PLAIN",
				"-u", g.user+":"+g.appPW, u.url)
			if !strings.Contains(out, "fetched by a real client") {
				t.Fatalf("curl output lacks the message:\n%s", out)
			}
		})
	}
}
