package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/passgate/passgate/internal/testlog"
)

// PROXY protocol with real components: HAProxy in front of passgate
// (send-proxy-v2), and passgate in front of a Dovecot listener with
// haproxy = yes (send_proxy). In both, the client's address must be the
// one that is logged and forwarded, not the balancer's.

// haproxyConf is a TCP-mode HAProxy that hands every connection to one
// server with a PROXY v2 header. No health checks: passgate sees only the
// test's connections.
const haproxyConf = `# written by passgate's integration tests
global
  pidfile %[1]s/haproxy.pid

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend imap
  bind %[2]s
  default_backend passgate

backend passgate
  server passgate %[3]s send-proxy-v2
`

// startHAProxy starts a private HAProxy in the foreground (-db) on a free
// port of 127.0.0.1 in front of backend, and returns its address once a
// connection through it gets an IMAP greeting. It is stopped by its PID
// when the test ends; its output is printed if the test failed.
func startHAProxy(t *testing.T, backend string) string {
	t.Helper()
	return startHAProxyFor(t, backend, "* OK")
}

// startHAProxyFor is startHAProxy for a backend whose greeting starts with
// greeting (SMTP: "220 ").
func startHAProxyFor(t *testing.T, backend, greeting string) string {
	t.Helper()
	bin := requireTool(t, "haproxy")
	dir := t.TempDir()
	listen := addr(freePort(t))
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(haproxyConf, dir, listen, backend)), 0o600); err != nil {
		t.Fatalf("haproxy config: %v", err)
	}
	cmd := exec.Command(bin, "-f", conf, "-db")
	out := new(testlog.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("haproxy did not exit 10 s after SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- haproxy output ---\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitGreeting(ctx, listen, greeting, exited); err != nil {
		t.Fatalf("haproxy in front of %s: %v\n%s", backend, err, out)
	}
	return listen
}

// proxyLocalHeader is a PROXY v2 LOCAL header: a balancer's own
// connection (a health check), which keeps the balancer's address.
func proxyLocalHeader(t testing.TB) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	b, err := h.Format()
	if err != nil {
		t.Fatalf("PROXY LOCAL header: %v", err)
	}
	return b
}

// TestHAProxySendProxyV2 puts a real HAProxy with send-proxy-v2 in front of
// passgate's PROXY-enabled IMAP listener: a client from 127.0.0.2 logs in
// through it and passgate's audit, its session log and Dovecot all see
// 127.0.0.2, not HAProxy's 127.0.0.1. Without a header from the trusted
// proxy, or with a header from an untrusted source, nothing is honoured.
func TestHAProxySendProxyV2(t *testing.T) {
	requireTool(t, "haproxy")
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true, ProxyProtocol: true})
	a := newAccount(t, d, pg, false)
	front := startHAProxy(t, pg.IMAPAddr)
	client := net.IPv4(127, 0, 0, 2)

	t.Run("client address through HAProxy", func(t *testing.T) {
		c, greeting := dialRawFrom(t, front, client)
		if !strings.HasPrefix(greeting, "* OK") {
			t.Fatalf("greeting through haproxy: %q", greeting)
		}
		if status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote(a.AppPass)); !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN through haproxy: %q", status)
		}
		c.transact("LOGOUT")
		if !waitOutput(pg, "msg=audit", "user="+a.User, "result=ok", "remote=127.0.0.2 ") {
			t.Errorf("no audit line with remote=127.0.0.2 for %s in passgate's output", a.User)
		}
		if !hasLineWith(pg.Output(), `msg="imap login"`, "user="+a.User, "remote=127.0.0.2:") {
			t.Errorf("no session log line with remote=127.0.0.2 for %s in passgate's output", a.User)
		}
		if hasLineWith(pg.Output(), "user="+a.User, "remote=127.0.0.1:") {
			t.Errorf("passgate logged HAProxy's address 127.0.0.1 for %s", a.User)
		}
		login := loginLine(d.LogWhen("Login: user=<"+a.User+">"), a.User)
		if !strings.Contains(login, "rip=127.0.0.2,") {
			t.Errorf("Dovecot's login line lacks rip=127.0.0.2: %q", login)
		}
	})

	t.Run("trusted source without a header is closed", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", pg.IMAPAddr, ioTimeout)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(ioTimeout))
		io.WriteString(conn, "a1 CAPABILITY\r\n")
		got, err := io.ReadAll(conn)
		if len(got) > 0 {
			t.Fatalf("passgate answered a header-less connection from the trusted proxy: %q", got)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection not closed within %v", ioTimeout)
		}
	})

	t.Run("header from an untrusted source is not honoured", func(t *testing.T) {
		c, greeting := dialRawFrom(t, pg.IMAPAddr, net.IPv4(127, 0, 0, 3))
		if !strings.HasPrefix(greeting, "* OK") {
			t.Fatalf("greeting: %q", greeting)
		}
		c.writeLine("PROXY TCP4 192.0.2.9 127.0.0.1 40000 143")
		if line := c.readLine(); !strings.HasPrefix(line, "PROXY BAD") && !strings.HasPrefix(line, "* BAD") {
			t.Fatalf("PROXY header from 127.0.0.3: %q, want BAD", line)
		}
		b := newAccount(t, d, pg, false)
		if status, _ := c.transact("LOGIN " + quote(b.User) + " " + quote(b.AppPass)); !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN after the refused header: %q", status)
		}
		c.transact("LOGOUT")
		if !waitOutput(pg, "msg=audit", "user="+b.User, "result=ok", "remote=127.0.0.3 ") {
			t.Errorf("no audit line with the real source 127.0.0.3 for %s", b.User)
		}
		if strings.Contains(pg.Output(), "192.0.2.9") {
			t.Errorf("passgate logged the address an untrusted client claimed")
		}
	})
}

// TestSendProxyToDovecot logs in through passgate with send_proxy = "v2" to
// Dovecot's haproxy = yes listener, without IMAP ID: Dovecot learns the
// client's address from the header alone (that listener refuses a
// connection without one).
func TestSendProxyToDovecot(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true, Upstream: d.IMAPProxyAddr, SendProxy: "v2"})
	a := newAccount(t, d, pg, false)
	d.deliver(t, a.User, testMessage(a.User, "send proxy", "x"))
	c := pg.dialFrom(t, viaPlain, nil, net.IPv4(127, 0, 0, 2))
	if err := c.Login(a.User, a.AppPass).Wait(); err != nil {
		t.Fatalf("LOGIN through passgate: %v", err)
	}
	if n := selectInbox(t, c); n != 1 {
		t.Fatalf("INBOX has %d messages, want the delivered one", n)
	}
	c.Logout().Wait()
	login := loginLine(d.LogWhen("Login: user=<"+a.User+">"), a.User)
	if login == "" {
		t.Fatalf("no login of %s in Dovecot's log", a.User)
	}
	if !strings.Contains(login, "rip=127.0.0.2,") {
		t.Errorf("Dovecot's login line lacks the client's rip=127.0.0.2: %s", login)
	}
}

// waitOutput reports whether passgate's output gets a line with every one
// of parts within 10 s (log lines follow the reply the client saw).
func waitOutput(pg *Passgate, parts ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !hasLineWith(pg.Output(), parts...) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestHAProxyFailedLoginLimits: the brute-force limit per address counts
// the client's address that HAProxy's send-proxy-v2 header carries, not
// HAProxy's own. Wrong passwords from 127.0.0.2 through HAProxy, up to
// limits.max_failures_per_ip, get that address blocked (even for a right
// password), while a client from 127.0.0.3 through the same HAProxy (one
// source address, 127.0.0.1, for passgate's socket) still logs in.
func TestHAProxyFailedLoginLimits(t *testing.T) {
	requireTool(t, "haproxy")
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true, ProxyProtocol: true})
	a := newAccount(t, d, pg, false)
	front := startHAProxy(t, pg.IMAPAddr)
	attacker, other := net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	login := func(src net.IP, user, secret string) string {
		c, greeting := dialRawFrom(t, front, src)
		if !strings.HasPrefix(greeting, "* OK") {
			t.Fatalf("greeting through haproxy from %s: %q", src, greeting)
		}
		status, _ := c.transact("LOGIN " + quote(user) + " " + quote(secret))
		c.transact("LOGOUT")
		return status
	}

	// limits.max_failures_per_ip is 10 by default (the harness leaves it);
	// each guess names another user, so that only the address's count
	// grows (the per-account ones stay at one).
	const maxFailuresPerIP = 10
	for i := range maxFailuresPerIP {
		if status := login(attacker, fmt.Sprintf("guess-%d@example.org", i), fmt.Sprintf("wrong guess %d", i)); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("guess %d from 127.0.0.2: %q, want NO [AUTHENTICATIONFAILED]", i+1, status)
		}
	}
	if status := login(attacker, a.User, a.AppPass); !strings.HasPrefix(status, "NO [UNAVAILABLE] Too many failed logins") {
		t.Fatalf("right password from 127.0.0.2 after %d failures: %q, want NO [UNAVAILABLE] Too many failed logins", maxFailuresPerIP, status)
	}
	if status := login(other, a.User, a.AppPass); !strings.HasPrefix(status, "OK") {
		t.Fatalf("from 127.0.0.3 through the same HAProxy: %q, want OK (only 127.0.0.2 is blocked)", status)
	}
	if !waitOutput(pg, "msg=audit", "user="+a.User, "result=rate-limited", "remote=127.0.0.2 ") {
		t.Errorf("no audit line rate-limited with remote=127.0.0.2 for %s", a.User)
	}
	if !waitOutput(pg, "msg=audit", "user="+a.User, "result=ok", "remote=127.0.0.3 ") {
		t.Errorf("no audit line ok with remote=127.0.0.3 for %s", a.User)
	}
	if hasLineWith(pg.Output(), "msg=audit", "remote=127.0.0.1 ") {
		t.Errorf("passgate audited HAProxy's address 127.0.0.1")
	}
}

// TestHAProxySMTPSubmission puts HAProxy with send-proxy-v2 in front of
// passgate's submission port, in front of Postfix in xclient mode: swaks
// from 127.0.0.2 sends through HAProxy and passgate, and passgate's audit
// and Postfix (XCLIENT ADDR=, shown in its Received header) both name
// 127.0.0.2, not HAProxy's 127.0.0.1.
func TestHAProxySMTPSubmission(t *testing.T) {
	requireTool(t, "haproxy")
	requirePostfix(t)
	d, sink := sharedSink(t)
	p := startPostfix(t, sink.Addr)
	g := startSMTPGate(t, d, smtpOpts{Upstream: p.SMTPAddr, Login: "xclient",
		Passgate: passgateOpts{ProxyProtocol: true, ProxySMTP: true}})
	a := newAccount(t, d, g.Passgate, true)
	front := *g
	front.SubmitAddr = startHAProxyFor(t, g.SubmitAddr, "220 ")

	rcpt := uniqueRcpt("haproxy")
	msg := smtpMessage(a.User, rcpt, "through HAProxy and passgate")
	r := runSwaks(t, &front, sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: a.User, Secret: a.AppPass,
		From: a.User, To: []string{rcpt}, File: writeMessage(t, msg), Src: "127.0.0.2"})
	if r.Exit != 0 {
		t.Fatalf("swaks through haproxy: exit %d:\n%s", r.Exit, r.Transcript)
	}
	received := checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
	if !strings.Contains(received, "[127.0.0.2]") || strings.Contains(received, "[127.0.0.1]") {
		t.Errorf("Postfix's Received header does not name the client 127.0.0.2 (XCLIENT ADDR=):\n%s", received)
	}
	if !waitOutput(g.Passgate, "msg=audit", "protocol=smtp", "user="+a.User, "result=ok", "remote=127.0.0.2 ") {
		t.Errorf("no smtp audit line with remote=127.0.0.2 for %s", a.User)
	}
	if hasLineWith(g.Output(), "msg=audit", "remote=127.0.0.1 ") {
		t.Errorf("passgate audited HAProxy's address 127.0.0.1")
	}
}
