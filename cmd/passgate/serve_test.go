package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/config"
)

// appendConfig adds TOML tables to the config file at path.
func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// startServe runs serve with the config at path until the test ends and
// returns where it listens.
func startServe(t *testing.T, path string) listening {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listening, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	log, _ := newLogger(cfg.Log, &logs)
	go func() { done <- serve(ctx, cfg, log, func(l listening) { ready <- l }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	select {
	case l := <-ready:
		return l
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not become ready")
	}
	return listening{}
}

// TestServeAppliesPreauthTimeout: limits.preauth_timeout closes an idle
// client before login on IMAP and on SMTP, where it used to wait 5 minutes.
func TestServeAppliesPreauthTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	path := testConfig(t)
	appendConfig(t, path, `[smtp]
listen = "127.0.0.1:0"
allow_cleartext = true
[smtp.upstream]
address = "127.0.0.1:9"
login = "master"
master_user = "proxy"
master_secret = "master-secret-value"
dial_timeout = "1s"
[limits]
preauth_timeout = "300ms"
`)
	l := startServe(t, path)
	for _, tt := range []struct {
		proto, addr, greeting, bye string
	}{
		{"imap", l.IMAP.String(), "* OK ", "* BYE Autologout; idle for too long"},
		{"smtp", l.SMTP.String(), "220 ", "421 4.4.2 Idle timeout, bye bye"},
	} {
		t.Run(tt.proto, func(t *testing.T) {
			start := time.Now()
			c, err := net.DialTimeout("tcp", tt.addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, tt.greeting) {
				t.Fatalf("greeting %q, %v", line, err)
			}
			line, err := r.ReadString('\n')
			took := time.Since(start)
			if err != nil || strings.TrimSpace(line) != tt.bye {
				t.Fatalf("after %v idle: read %q, %v; want %q", took, line, err, tt.bye)
			}
			t.Logf("%s: closed after %v (preauth_timeout %v)", tt.proto, took.Round(time.Millisecond), timeout)
			if took < timeout {
				t.Errorf("closed after %v, before preauth_timeout", took)
			}
		})
	}
}

// smtpAuthPlain says EHLO and AUTH PLAIN over a raw connection and returns
// the AUTH reply line.
func smtpAuthPlain(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if _, err := tp.Cmd("EHLO client.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if _, err := tp.Cmd("AUTH PLAIN %s", ir); err != nil {
		t.Fatal(err)
	}
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("AUTH reply: %v", err)
	}
	return line
}

// TestMasterSeparatorInUsername: with login-master and separator "%", a
// user name holding "%" would reach the upstream as LOGIN "eve%bob%proxy".
// The CLI refuses to create one, naming the username; an account made
// before the separator was configured is refused at login like an unknown
// user (IMAP AUTHENTICATIONFAILED, SMTP 535 5.7.8, audited unknown-user),
// and the upstream is never asked.
func TestMasterSeparatorInUsername(t *testing.T) {
	path := testConfig(t)
	appendConfig(t, path, `[smtp]
listen = "127.0.0.1:0"
allow_cleartext = true
[smtp.upstream]
address = "127.0.0.1:9"
login = "master"
master_user = "proxy"
master_secret = "master-secret-value"
`)
	const legacy = "eve%bob@example.org"
	mustCLI(t, "", "user", "add", legacy, "--config", path)
	out := mustCLI(t, "", "apppass", "create", legacy, "--name", "old phone", "--json", "--config", path)
	var created struct{ Password string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}

	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.ReplaceAll(text, []byte(`login = "master"`), []byte("login = \"login-master\"\nmaster_separator = \"%\""))
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = cli(t, "", "user", "add", "mallory%proxy@example.org", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "username") || !strings.Contains(err.Error(), `"%"`) {
		t.Errorf("user add mallory%%proxy: err = %v, want it to name the username and the separator", err)
	}

	l := startServe(t, path)
	if got := imapLogin(t, l.IMAP.String(), legacy, created.Password); got != "a NO [AUTHENTICATIONFAILED] Invalid credentials\r\n" {
		t.Errorf("IMAP LOGIN %s: %q", legacy, got)
	}
	if got := smtpAuthPlain(t, l.SMTP.String(), legacy, created.Password); got != "535 5.7.8 Authentication credentials invalid" {
		t.Errorf("SMTP AUTH %s: %q", legacy, got)
	}
	act := mustCLI(t, "", "user", "activity", legacy, "--config", path)
	if strings.Count(act, "unknown-user") != 2 || strings.Contains(act, "upstream-error") || strings.Contains(act, " ok ") {
		t.Errorf("activity of %s:\n%s", legacy, act)
	}
}

// TestNewLogger: log.level and log.format choose the process log's level
// and encoding.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(config.Log{Level: "warn", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	log.Warn("hello", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != "v" {
		t.Errorf("json log at warn: %q (%v)", buf.String(), err)
	}
	buf.Reset()
	if log, err = newLogger(config.Log{Level: "debug", Format: "text"}, &buf); err != nil {
		t.Fatal(err)
	}
	log.Debug("hi")
	if !strings.Contains(buf.String(), "level=DEBUG msg=hi") {
		t.Errorf("text log at debug: %q", buf.String())
	}
}
