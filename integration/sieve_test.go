package integration

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy/sieve"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// TestSieveConnect: sieve-connect uploads, lists and activates a script
// through passgate (STARTTLS, AUTHENTICATE PLAIN with an app password),
// and Dovecot applies it to a message delivered by LMTP.
func TestSieveConnect(t *testing.T) {
	d := sharedDovecot(t)
	if d.SieveAddr == "" {
		missing(t, "Dovecot's managesieve is not installed (Debian packages dovecot-managesieved dovecot-sieve)")
	}
	sc := requireTool(t, "sieve-connect")
	g := newLineGate(t, d, store.ScopeSieve)
	srv := &sieve.Server{
		Auth:     g.guard,
		Upstream: upstream.Config{Address: d.SieveAddr, MasterUser: masterUser, MasterSecret: masterSecret}.Sieve(),
		Sessions: g.reg, TLSConfig: g.tls, Logger: slog.New(slog.DiscardHandler),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

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
