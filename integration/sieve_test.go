package integration

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sieve"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// sieveGate is passgate's ManageSieve front-end in front of the test
// Dovecot's managesieved (master user), offering STARTTLS.
type sieveGate struct {
	*lineGate
	addr string
	srv  *sieve.Server
}

// startSieveGate serves ManageSieve on a port of 127.0.0.1; tune may change
// the server before it starts (AllowCleartext is false unless set).
func startSieveGate(t *testing.T, d *Dovecot, limits proxy.Limits, tune ...func(*sieve.Server)) *sieveGate {
	t.Helper()
	if d.SieveAddr == "" {
		testtool.Missing(t, "Dovecot's managesieve is not installed (Debian packages dovecot-managesieved dovecot-sieve)")
	}
	g := &sieveGate{lineGate: newLineGate(t, d, store.ScopeSieve)}
	g.srv = &sieve.Server{
		Auth:     g.guard,
		Upstream: upstream.Config{Address: d.SieveAddr, MasterUser: masterUser, MasterSecret: masterSecret}.Sieve(),
		Sessions: g.reg, Limits: limits, TLSConfig: g.tls, Logger: slog.New(slog.DiscardHandler),
	}
	for _, f := range tune {
		f(g.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { g.srv.Serve(ln); close(done) }()
	t.Cleanup(func() { g.srv.Close(); <-done })
	return g
}

// dialSieve connects and reads the capability greeting up to its OK.
func dialSieve(t *testing.T, addr string) *popConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &popConn{t: t, c: c, r: bufio.NewReader(c)}
	for l := p.line(); !strings.HasPrefix(l, "OK"); l = p.line() {
		if !strings.HasPrefix(l, `"`) {
			t.Fatalf("greeting line %q", l)
		}
	}
	return p
}

func allowCleartext(s *sieve.Server) { s.AllowCleartext = true }

// TestSieveBadInput: bad input before login gets a clear NO, or BYE and
// the end of the connection where the stream cannot go on or a limit is
// reached.
func TestSieveBadInput(t *testing.T) {
	d := sharedDovecot(t)
	limits := proxy.Limits{MaxLine: 512, MaxLiteral: 1024, MaxFailedLogins: 3}
	open := startSieveGate(t, d, limits, allowCleartext)
	tlsOnly := startSieveGate(t, d, limits)
	wrong := `AUTHENTICATE "PLAIN" "` + plainIR("", open.user, "wrong-secret") + `"`
	cases := []struct {
		name   string
		gate   *sieveGate
		send   []string
		want   string // the last reply
		closed bool
	}{
		{"long line", open, []string{`AUTHENTICATE "PLAIN" "` + strings.Repeat("a", 600) + `"`}, `BYE "Line too long"`, true},
		{"bad base64", open, []string{`AUTHENTICATE "PLAIN" "!!!"`}, `NO "Invalid base64"`, false},
		{"unknown mechanism", open, []string{`AUTHENTICATE "CRAM-MD5"`}, `NO "Unsupported authentication mechanism"`, false},
		{"literal too large", open, []string{`AUTHENTICATE "PLAIN" {2000+}`}, `BYE "Literal too large"`, true},
		{"too many failures", open, []string{wrong, wrong, wrong}, `BYE "Invalid credentials"`, true},
		{"AUTHENTICATE before STARTTLS", tlsOnly, []string{`AUTHENTICATE "PLAIN" "` + plainIR("", tlsOnly.user, tlsOnly.appPW) + `"`},
			`NO (ENCRYPT-NEEDED) "Use STARTTLS first"`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dialSieve(t, tc.gate.addr)
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
			} else if r := p.cmd("LOGOUT"); r != `OK "Bye"` {
				t.Errorf("LOGOUT after the error: %q, want OK \"Bye\"", r)
			}
		})
	}
}

// TestSieveRevokeEndsSession: revoking the app password ends a relayed
// ManageSieve session.
func TestSieveRevokeEndsSession(t *testing.T) {
	d := sharedDovecot(t)
	g := startSieveGate(t, d, proxy.Limits{}, allowCleartext)
	p := dialSieve(t, g.addr)
	if r := p.cmd(`AUTHENTICATE "PLAIN" "` + plainIR("", g.user, g.appPW) + `"`); !strings.HasPrefix(r, "OK") {
		t.Fatalf("AUTHENTICATE: %q", r)
	}
	if r := p.cmd("LISTSCRIPTS"); !strings.HasPrefix(r, "OK") {
		t.Fatalf("LISTSCRIPTS through the relay: %q", r)
	}
	if _, err := g.accounts.RevokeAppPassword(context.Background(), testActor, g.user, "phone"); err != nil {
		t.Fatal(err)
	}
	if !p.closed() {
		t.Fatal("the session outlived the revocation")
	}
}

// TestSieveConnect: sieve-connect uploads, lists and activates a script
// through passgate (STARTTLS, AUTHENTICATE PLAIN with an app password),
// and Dovecot applies it to a message delivered by LMTP.
func TestSieveConnect(t *testing.T) {
	d := sharedDovecot(t)
	sc := requireTool(t, "sieve-connect")
	g := startSieveGate(t, d, proxy.Limits{})
	_, port, _ := net.SplitHostPort(g.addr)

	script := filepath.Join(t.TempDir(), "tofolder.sieve")
	os.WriteFile(script, []byte("require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"filtered\" { fileinto :create \"Filtered\"; }\n"), 0o644)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		pr, pw, _ := os.Pipe()
		pw.WriteString(g.appPW + "\n")
		pw.Close()
		cmd := exec.CommandContext(ctx, sc, append([]string{"--server", "localhost", "--port", port, "--user", g.user,
			"--authmech", "PLAIN", "--tlscafile", g.certFile, "--passwordfd", "3"}, args...)...)
		cmd.ExtraFiles = []*os.File{pr}
		out, err := cmd.CombinedOutput()
		pr.Close()
		if err != nil {
			t.Fatalf("sieve-connect %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("--upload", "--localsieve", script, "--remotesieve", "tofolder")
	if out := run("--list"); !strings.Contains(out, "tofolder") {
		t.Fatalf("--list lacks the script:\n%s", out)
	}
	run("--activate", "--remotesieve", "tofolder")
	if out := run("--list"); !strings.Contains(out, "tofolder") || !strings.Contains(strings.ToLower(out), "active") {
		t.Fatalf("--list after --activate:\n%s", out)
	}
	d.deliver(t, g.user, testMessage(g.user, "filtered by sieve", "through passgate"))
	folder := filepath.Join(d.Dir, "mail", "example.org", strings.SplitN(g.user, "@", 2)[0], "Maildir", ".Filtered", "new")
	entries, err := os.ReadDir(folder)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Filtered folder %s: %d messages, %v; want the message the script filed", folder, len(entries), err)
	}
}
