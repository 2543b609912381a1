package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// ioTimeout bounds every read and write of the raw IMAP helpers.
const ioTimeout = 10 * time.Second

// rawIMAP speaks IMAP as text, for transcripts that a client library would
// hide (literals, pre-auth capabilities, exact response codes).
type rawIMAP struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// dialRaw connects to an IMAP server and returns the connection and its
// greeting line.
func dialRaw(t testing.TB, address string) (*rawIMAP, string) {
	t.Helper()
	return dialRawFrom(t, address, nil)
}

// dialRawFrom is dialRaw from a chosen loopback source address (nil: any).
func dialRawFrom(t testing.TB, address string, src net.IP) (*rawIMAP, string) {
	t.Helper()
	d := &net.Dialer{Timeout: ioTimeout}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	conn, err := d.Dial("tcp", address)
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawIMAP{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.readLine()
}

// dialRawTLS is dialRaw over implicit TLS.
func dialRawTLS(t testing.TB, address string, cfg *tls.Config) (*rawIMAP, string) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", address, cfg)
	if err != nil {
		t.Fatalf("dial %s with TLS: %v", address, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawIMAP{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.readLine()
}

// startTLS runs STARTTLS and switches the connection to TLS.
func (c *rawIMAP) startTLS(cfg *tls.Config) {
	c.t.Helper()
	if status, _ := c.transact("STARTTLS"); !strings.HasPrefix(status, "OK") {
		c.t.Fatalf("STARTTLS: %s", status)
	}
	if c.r.Buffered() > 0 {
		c.t.Fatalf("STARTTLS: %d bytes buffered after the tagged OK (command injection?)", c.r.Buffered())
	}
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("STARTTLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// readLine reads one CRLF-terminated line (without the CRLF) within
// ioTimeout.
func (c *rawIMAP) readLine() string {
	c.t.Helper()
	line, err := c.readLineErr()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return line
}

func (c *rawIMAP) readLineErr() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return line, fmt.Errorf("read line (got %q): %w", line, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// writeLine sends one line, adding CRLF.
func (c *rawIMAP) writeLine(line string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("write %q: %v", redact(line), err)
	}
}

// nextTag returns a fresh command tag.
func (c *rawIMAP) nextTag() string {
	c.n++
	return fmt.Sprintf("a%d", c.n)
}

// transact sends a tagged command and reads until its tagged response. It
// returns the status part of the tagged line ("OK ...", "NO ...", "BAD ...")
// and the untagged lines before it.
func (c *rawIMAP) transact(command string) (status string, untagged []string) {
	c.t.Helper()
	tag := c.nextTag()
	c.writeLine(tag + " " + command)
	return c.readTagged(tag)
}

// readTagged reads lines until the one tagged with tag.
func (c *rawIMAP) readTagged(tag string) (status string, untagged []string) {
	c.t.Helper()
	for {
		line := c.readLine()
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			return rest, untagged
		}
		untagged = append(untagged, line)
	}
}

// forwardIP sends ID with x-originating-ip (RFC 2971; Dovecot honours it
// from login_trusted_networks), so that Dovecot attributes the login to ip.
func (c *rawIMAP) forwardIP(ip string) {
	c.t.Helper()
	if status, _ := c.transact(`ID ("name" "passgate-integration" "x-originating-ip" ` + quote(ip) + `)`); !strings.HasPrefix(status, "OK") {
		c.t.Fatalf("ID: %q", status)
	}
}

// redact hides the arguments of LOGIN and AUTHENTICATE in failure messages.
func redact(line string) string {
	f := strings.Fields(line)
	if len(f) >= 2 && (strings.EqualFold(f[1], "LOGIN") || strings.EqualFold(f[1], "AUTHENTICATE")) {
		return f[0] + " " + f[1] + " [redacted]"
	}
	return line
}

// hasLine reports whether any line contains substr (case-insensitive).
func hasLine(lines []string, substr string) bool {
	for _, l := range lines {
		if strings.Contains(strings.ToUpper(l), strings.ToUpper(substr)) {
			return true
		}
	}
	return false
}

// quote renders s as an IMAP quoted string (RFC 3501 section 4.3).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
