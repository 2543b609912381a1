package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testtool"
)

// aptPackages names the Debian package that provides each external component.
var aptPackages = map[string]string{
	"dovecot":          "dovecot-imapd dovecot-lmtpd dovecot-submissiond",
	"doveadm":          "dovecot-core",
	"curl":             "curl",
	"/usr/bin/python3": "python3",
	"swaks":            "swaks",
	"chromium":         "chromium",
	"postfix":          "postfix",
	"fetchmail":        "fetchmail",
	"sieve-connect":    "sieve-connect",
	"haproxy":          "haproxy",
}

// requireTool returns the path of an external program. When it is missing the
// test is skipped, or fails when CI=true, naming the component and the apt
// package that provides it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Require(t, name, aptPackages[name])
}

// requireDovecot checks what the Dovecot harness needs: the dovecot and
// doveadm programs, and root, because Dovecot runs its mail processes as
// nobody and the harness hands the mail directory to that user.
func requireDovecot(t testing.TB) {
	t.Helper()
	requireTool(t, "dovecot")
	requireTool(t, "doveadm")
	if os.Geteuid() != 0 {
		testtool.Missing(t, "the Dovecot harness must run as root (Dovecot runs mail processes as nobody)")
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := testtool.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitGreeting dials addr until it accepts and sends a line starting with
// prefix (an IMAP "* OK" greeting), or the deadline passes. exited, if not
// nil, aborts the wait when the server process ends.
func waitGreeting(ctx context.Context, address, prefix string, exited <-chan struct{}) error {
	return waitGreetingAfter(ctx, address, nil, prefix, exited)
}

// waitGreetingAfter is waitGreeting that sends preamble (a PROXY protocol
// header) first on each connection.
func waitGreetingAfter(ctx context.Context, address string, preamble []byte, prefix string, exited <-chan struct{}) error {
	var last error
	for {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil && len(preamble) > 0 {
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, werr := conn.Write(preamble); werr != nil {
				conn.Close()
				conn, err = nil, werr
			}
		}
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, rerr := conn.Read(buf)
			conn.Close()
			if n > 0 && bytes.HasPrefix(buf[:n], []byte(prefix)) {
				return nil
			}
			last = fmt.Errorf("greeting %q: %v", buf[:n], rerr)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for greeting on %s: %w (last: %v)", address, ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("wait for greeting on %s: server exited (last: %v)", address, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
