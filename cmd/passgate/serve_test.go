package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
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
