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
	if err := waitGreeting(ctx, listen, "* OK", exited); err != nil {
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
