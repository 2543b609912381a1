package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
)

// startTLSIMAP opens an IMAP connection, runs STARTTLS and returns it with
// the certificate the server presented.
func startTLSIMAP(t *testing.T, addr string) (*tls.Conn, *bufio.Reader, []byte) {
	t.Helper()
	c, r := dialIMAP(t, addr)
	if reply := imapCmd(t, c, r, "s", "STARTTLS"); !strings.HasPrefix(reply, "s OK") {
		t.Fatalf("STARTTLS: %q", reply)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc, bufio.NewReader(tc), tc.ConnectionState().PeerCertificates[0].Raw
}

// survivesFailedLogin reports whether a new connection stays open after
// one failed login (limits.max_failed_logins > 1).
func survivesFailedLogin(t *testing.T, addr string) bool {
	t.Helper()
	c, r := dialIMAP(t, addr)
	defer c.Close()
	if reply := imapCmd(t, c, r, "a", `LOGIN "nobody@example.org" "wrong-password"`); !strings.HasPrefix(reply, "a NO") {
		t.Fatalf("bad login: %q", reply)
	}
	fmt.Fprintf(c, "n NOOP\r\n")
	line, err := r.ReadString('\n')
	return err == nil && strings.HasPrefix(line, "n OK")
}

func setLine(t *testing.T, path, old, new string) {
	t.Helper()
	text := readFile(t, path)
	if !strings.Contains(text, old) {
		t.Fatalf("%s has no %q", path, old)
	}
	writeFile(t, path, strings.Replace(text, old, new, 1))
}

// TestReloadUnderLoad: a session idles, another fetches in a loop and a
// third sits on TLS while the certificate files are replaced and `passgate
// reload` runs; all go on. New connections get the new certificate and the
// new limits.max_failed_logins; a changed limits.idle_timeout is
// reported as needing a restart. An invalid file is refused with its error
// printed, by the CLI and by the server itself, and the settings stay.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.Write(t, dir, "")
	w := startMetricsWorld(t, fmt.Sprintf(`[tls]
cert_file = %q
key_file = %q
[limits]
max_failed_logins = 3
idle_timeout = "35m"
tarpit_base = "10ms"
tarpit_max = "20ms"
`, certFile, keyFile))
	addr := w.l.IMAP.String()
	login := fmt.Sprintf("LOGIN %q %q", mUser, w.password)

	idler, idleR := dialIMAP(t, addr)
	defer idler.Close()
	if reply := imapCmd(t, idler, idleR, "a", login); !strings.HasPrefix(reply, "a OK") {
		t.Fatalf("idler login: %q", reply)
	}
	imapCmd(t, idler, idleR, "b", "SELECT INBOX")
	fmt.Fprintf(idler, "i IDLE\r\n")
	if line, err := idleR.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+") {
		t.Fatalf("IDLE: %q, %v", line, err)
	}
	tlsSess, tlsR, oldCert := startTLSIMAP(t, addr)
	if reply := imapCmd(t, tlsSess, tlsR, "a", login); !strings.HasPrefix(reply, "a OK") {
		t.Fatalf("TLS session login: %q", reply)
	}
	if !survivesFailedLogin(t, addr) {
		t.Fatal("with max_failed_logins = 3 one failure closed the connection")
	}

	// The fetcher runs until the reload is done.
	stop := make(chan struct{})
	var fetches int
	var fetchErr error
	var wg sync.WaitGroup
	fetcher, fetchR := dialIMAP(t, addr)
	defer fetcher.Close()
	if reply := imapCmd(t, fetcher, fetchR, "a", login); !strings.HasPrefix(reply, "a OK") {
		t.Fatalf("fetcher login: %q", reply)
	}
	imapCmd(t, fetcher, fetchR, "b", "SELECT INBOX")
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tag := fmt.Sprintf("f%d", i)
			fmt.Fprintf(fetcher, "%s FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", tag)
			for {
				line, err := fetchR.ReadString('\n')
				if err != nil {
					fetchErr = fmt.Errorf("fetch %d: %w", i, err)
					return
				}
				if strings.HasPrefix(line, tag+" ") {
					if !strings.HasPrefix(line, tag+" OK") {
						fetchErr = fmt.Errorf("fetch %d: %q", i, line)
						return
					}
					break
				}
			}
			fetches++
		}
	})

	// certbot renews: new files over the old names.
	nc, nk := testcert.Write(t, dir, "new-")
	for _, m := range [][2]string{{nc, certFile}, {nk, keyFile}} {
		if err := os.Rename(m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}
	setLine(t, w.path, "max_failed_logins = 3", "max_failed_logins = 1")
	setLine(t, w.path, `idle_timeout = "35m"`, `idle_timeout = "36m"`)
	out := mustCLI(t, "", "reload", "--config", w.path)
	close(stop)
	wg.Wait()
	if fetchErr != nil || fetches == 0 {
		t.Fatalf("the fetching session during the reload: %d fetches, %v", fetches, fetchErr)
	}
	t.Logf("%d FETCH round trips while the files changed and the reload ran", fetches)
	if reply := imapCmd(t, fetcher, fetchR, "c", "FETCH 1 (FLAGS)"); !strings.HasPrefix(reply, "c OK") {
		t.Errorf("fetching session after the reload: %q", reply)
	}
	if !strings.Contains(out, "configuration reloaded") || !strings.Contains(out, "limits.idle_timeout") ||
		strings.Contains(out, "max_failed_logins") {
		t.Errorf("passgate reload printed %q, want it reloaded with limits.idle_timeout (only) not applied", out)
	}

	_, _, newCert := startTLSIMAP(t, addr)
	if bytes.Equal(newCert, oldCert) {
		t.Error("a new connection after the reload got the old certificate")
	}
	if survivesFailedLogin(t, addr) {
		t.Error("after reloading max_failed_logins = 1, a new connection survived a failed login")
	}
	fmt.Fprintf(idler, "DONE\r\n")
	if reply := imapCmd(t, idler, idleR, "c", "NOOP"); !strings.HasPrefix(reply, "c OK") {
		t.Errorf("idling session after the reload: %q", reply)
	}
	if reply := imapCmd(t, tlsSess, tlsR, "b", "SELECT INBOX"); !strings.HasPrefix(reply, "b OK") {
		t.Errorf("TLS session after the reload: %q", reply)
	}

	// An invalid file: refused, printed, and nothing changes.
	setLine(t, w.path, "max_failed_logins = 1", `max_failed_logins = "three"`)
	_, _, err := cli(t, "", "reload", "--config", w.path)
	if err == nil || !strings.Contains(err.Error(), "max_failed_logins") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("passgate reload of an invalid file: %v, want a refusal naming limits.max_failed_logins", err)
	}
	cfgSocket := filepath.Join(filepath.Dir(w.path), "passgate.sock")
	r, err := dialControl(cfgSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.reload(); err == nil || !strings.Contains(err.Error(), "max_failed_logins") {
		t.Errorf("the server's own reload of an invalid file: %v, want a refusal naming the key", err)
	}
	if survivesFailedLogin(t, addr) {
		t.Error("after a refused reload the limit is no longer the last good one (1)")
	}
	if _, _, c := startTLSIMAP(t, addr); !bytes.Equal(c, newCert) {
		t.Error("after a refused reload the certificate changed")
	}
}

// TestChangedKeysNamesKeys: a reload reports changed settings by their
// TOML keys, including embedded tables and secrets (by name only), and
// ignores what the load derives.
func TestChangedKeysNamesKeys(t *testing.T) {
	a, err := loadConfig(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	if got := changedKeys("", reflect.ValueOf(*a), reflect.ValueOf(b)); len(got) != 0 {
		t.Fatalf("unchanged config: %v", got)
	}
	b.IMAP.Upstream.MasterSecret = "another-secret"
	b.IMAP.Upstream.TLSConfig = &tls.Config{}
	b.Limits.MaxConnections = 7 // in the embedded GuardLimits
	b.File = "/elsewhere.toml"
	got := strings.Join(changedKeys("", reflect.ValueOf(*a), reflect.ValueOf(b)), " ")
	if got != "imap.upstream.master_secret limits.max_connections" {
		t.Errorf("changed keys = %q", got)
	}
}

// greeting dials addr and returns the server's first line.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// TestReloadConnectionCaps: a reload that lowers
// limits.max_connections_per_ip refuses the new connections past it while
// the open ones go on, and one that raises it admits them again. Clients
// connect and leave all through the reload (under -race, the limiter's
// settings change while connections are counted).
func TestReloadConnectionCaps(t *testing.T) {
	w := startMetricsWorld(t, "[limits]\nmax_connections_per_ip = 3\n")
	addr := w.l.IMAP.String()
	var held []net.Conn
	var heldR []*bufio.Reader
	for range 2 {
		c, r := dialIMAP(t, addr)
		defer c.Close()
		held, heldR = append(held, c), append(heldR, r)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	churned := 0
	wg.Go(func() {
		for ; churned < 2000; churned++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	})
	setLine(t, w.path, "max_connections_per_ip = 3", "max_connections_per_ip = 2")
	out := mustCLI(t, "", "reload", "--config", w.path)
	close(stop)
	wg.Wait()
	t.Logf("%d connections came and went during the reload", churned)
	if strings.Contains(out, "max_connections_per_ip") {
		t.Errorf("passgate reload printed %q: max_connections_per_ip not applied", out)
	}
	if g := greeting(t, addr); !strings.HasPrefix(g, "* BYE") {
		t.Errorf("a third connection after lowering max_connections_per_ip to 2: %q, want * BYE", g)
	}
	for i, c := range held {
		if reply := imapCmd(t, c, heldR[i], "n", "NOOP"); !strings.HasPrefix(reply, "n OK") {
			t.Errorf("open connection %d after the reload: %q", i, reply)
		}
	}

	setLine(t, w.path, "max_connections_per_ip = 2", "max_connections_per_ip = 4")
	mustCLI(t, "", "reload", "--config", w.path)
	// The churning clients' connections end on the server a moment after
	// they closed; wait for their places to come free.
	deadline := time.Now().Add(10 * time.Second)
	g := greeting(t, addr)
	for !strings.HasPrefix(g, "* OK") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		g = greeting(t, addr)
	}
	if !strings.HasPrefix(g, "* OK") {
		t.Errorf("a third connection after raising max_connections_per_ip to 4: %q, want * OK", g)
	}
}

// capsUpstream is an IMAP server that only greets with the capabilities
// it is given (set, before login) and answers LOGOUT: what passgate's
// pre-login capability probe reads.
type capsUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	caps string
}

func startCapsUpstream(t *testing.T, caps string) *capsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &capsUpstream{ln: ln, caps: caps}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *capsUpstream) set(caps string) { u.mu.Lock(); u.caps = caps; u.mu.Unlock() }

func (u *capsUpstream) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	u.mu.Lock()
	caps := u.caps
	u.mu.Unlock()
	fmt.Fprintf(c, "* OK [CAPABILITY %s] test upstream\r\n", caps)
	line, err := bufio.NewReader(c).ReadString('\n')
	if tag, _, ok := strings.Cut(line, " "); err == nil && ok {
		fmt.Fprintf(c, "* BYE bye\r\n%s OK LOGOUT completed\r\n", tag)
	}
}

// TestReloadReprobesUpstreamCapabilities: IMAP's pre-login capabilities
// come from a probe of the upstream when serving starts; after the
// upstream changed (here: an upgrade that adds an extension), a reload
// probes again and new connections announce the new list.
func TestReloadReprobesUpstreamCapabilities(t *testing.T) {
	up := startCapsUpstream(t, "IMAP4rev1 IDLE X-BEFORE")
	path := testConfig(t)
	setLine(t, path, `address = "127.0.0.1:9"`, fmt.Sprintf("address = %q", up.ln.Addr().String()))
	l := startServe(t, path)
	addr := l.IMAP.String()
	if g := greeting(t, addr); !strings.Contains(g, " X-BEFORE ") {
		t.Fatalf("greeting at start: %q, want the upstream's X-BEFORE", g)
	}
	up.set("IMAP4rev1 IDLE X-AFTER")
	if g := greeting(t, addr); !strings.Contains(g, " X-BEFORE ") {
		t.Fatalf("greeting before the reload: %q, want the list learnt at start", g)
	}
	mustCLI(t, "", "reload", "--config", path)
	if g := greeting(t, addr); !strings.Contains(g, " X-AFTER ") || strings.Contains(g, "X-BEFORE") {
		t.Errorf("greeting after the reload: %q, want the upstream's new X-AFTER", g)
	}
}
