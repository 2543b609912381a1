package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// portalConfig writes testConfig plus a portal on 127.0.0.1 and at most
// perIP open connections from one address.
func portalConfig(t *testing.T, perIP int) string {
	t.Helper()
	path := testConfig(t)
	key := filepath.Join(filepath.Dir(path), "portal.key")
	if err := os.WriteFile(key, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`
[portal]
url = "http://127.0.0.1/"
listen = "127.0.0.1:0"
key_file = %q
[limits]
max_connections_per_ip = %d
`, key, perIP)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveConfig runs serve with the config at path until the test ends.
func serveConfig(t *testing.T, path string) listening {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listening, 1)
	done := make(chan error, 1)
	log, _ := newLogger(cfg.Log, &bytes.Buffer{})
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

// portalGet sends one request for /signin on a new connection and returns
// the status, or the error that ended the connection without a response.
func portalGet(t *testing.T, addr string) (int, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails; not a threshold
	if _, err := fmt.Fprint(c, "GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestPortalConnectionCap: limits.max_connections_per_ip bounds the
// portal's connections from one address as it does IMAP's and SMTP's: with
// the connections held idle, one more gets no page; once one is closed, a
// page is served again (issue 9, item 14).
func TestPortalConnectionCap(t *testing.T) {
	const perIP = 3
	l := serveConfig(t, portalConfig(t, perIP))
	addr := l.Portal.String()
	var held []net.Conn
	for range perIP {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	served := 0
	for range 5 {
		if code, err := portalGet(t, addr); err == nil {
			served++
			t.Logf("served %d with %d idle connections held", code, perIP)
		}
	}
	if served != 0 {
		t.Fatalf("%d of 5 requests were served while %d idle connections from the same address were open (limit %d)", served, perIP, perIP)
	}
	held[0].Close()
	// The portal sees the close when its read ends; ask until it has.
	for i := 0; ; i++ {
		code, err := portalGet(t, addr)
		if code == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("no page after an idle connection closed: %d, %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
