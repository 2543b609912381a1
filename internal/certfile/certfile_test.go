package certfile

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// echoServer serves TLS with r's certificate on 127.0.0.1:0, echoing lines.
func echoServer(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// dial connects and returns the connection and the certificate it got.
func dial(t *testing.T, addr string) (*tls.Conn, []byte) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].Raw
}

func echo(t *testing.T, c *tls.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("open session: write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("open session: echo %q, %v", buf, err)
	}
}

func certDER(t *testing.T, r *Reloader) []byte {
	t.Helper()
	c, _ := r.GetCertificate(nil)
	return c.Certificate[0]
}

// replace writes a new pair over certFile and keyFile, the way certbot's
// renewal replaces the files the configuration names.
func replace(t *testing.T, dir, certFile, keyFile string) {
	t.Helper()
	nc, nk := testcert.Write(t, dir, "new-")
	for _, m := range [][2]string{{nc, certFile}, {nk, keyFile}} {
		if err := os.Rename(m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSwapUnderRunningServer(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.Write(t, dir, "")
	r, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1e9, 0)}
	r.Now = clk.Now
	addr := echoServer(t, r)

	open, first := dial(t, addr)
	echo(t, open, "before\n")

	replace(t, dir, certFile, keyFile)
	if _, got := dial(t, addr); !bytes.Equal(got, first) {
		t.Fatal("certificate changed before the check interval passed")
	}
	clk.Add(CheckInterval)
	_, got := dial(t, addr)
	if bytes.Equal(got, first) {
		t.Fatal("new connection still gets the old certificate after the files changed")
	}
	if !bytes.Equal(got, certDER(t, r)) {
		t.Fatal("new connection's certificate is not the reloader's")
	}
	echo(t, open, "after\n") // the open session goes on
}

func TestBrokenFilesKeepOldPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.Write(t, dir, "")
	r, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var logs *testlog.Buffer
	r.Logger, logs = testlog.New(slog.LevelInfo)
	clk := &clock{t: time.Unix(1e9, 0)}
	r.Now = clk.Now
	old := certDER(t, r)

	// A half-done renewal: a new certificate with the old key.
	nc, _ := testcert.Write(t, dir, "new-")
	if err := os.Rename(nc, certFile); err != nil {
		t.Fatal(err)
	}
	clk.Add(CheckInterval)
	if !bytes.Equal(certDER(t, r), old) {
		t.Fatal("a pair that does not load replaced the loaded one")
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("no ERROR logged for the broken pair:\n%s", logs.String())
	}

	// The renewal completes: the new pair is taken.
	replace(t, dir, certFile, keyFile)
	clk.Add(CheckInterval)
	if bytes.Equal(certDER(t, r), old) {
		t.Fatal("the completed pair was not taken")
	}
}
