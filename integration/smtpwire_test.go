package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawSMTP speaks SMTP as text, for transcripts a client would hide (what
// EHLO offers before and after TLS, the exact reply to a refused command).
type rawSMTP struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// smtpReply is one (possibly multi-line) reply: its code and the text of
// each line without the code and separator.
type smtpReply struct {
	Code  int
	Lines []string
}

// String is the reply as the server wrote it, lines joined by " | ".
func (r smtpReply) String() string {
	return fmt.Sprintf("%d %s", r.Code, strings.Join(r.Lines, " | "))
}

// has reports whether a line of the reply starts with prefix (an EHLO
// keyword such as "AUTH" or "STARTTLS"), ignoring case.
func (r smtpReply) has(prefix string) bool {
	for _, l := range r.Lines {
		if strings.HasPrefix(strings.ToUpper(l), strings.ToUpper(prefix)) {
			return true
		}
	}
	return false
}

// dialSMTP connects and reads the greeting, failing the test unless it is
// 220.
func dialSMTP(t testing.TB, address string) *rawSMTP {
	t.Helper()
	conn, err := net.DialTimeout("tcp", address, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	return newRawSMTP(t, conn)
}

// dialSMTPTLS is dialSMTP over implicit TLS (RFC 8314).
func dialSMTPTLS(t testing.TB, address string, cfg *tls.Config) *rawSMTP {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", address, cfg)
	if err != nil {
		t.Fatalf("dial %s with TLS: %v", address, err)
	}
	return newRawSMTP(t, conn)
}

func newRawSMTP(t testing.TB, conn net.Conn) *rawSMTP {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	c := &rawSMTP{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.reply(); g.Code != 220 {
		t.Fatalf("greeting %s, want 220", g)
	}
	return c
}

// transact sends one command line and returns the reply.
func (c *rawSMTP) transact(line string) smtpReply {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("write %q: %v", redactSMTP(line), err)
	}
	return c.reply()
}

// reply reads one reply within ioTimeout (RFC 5321 §4.2: "xyz-text" lines
// up to a last "xyz text" line).
func (c *rawSMTP) reply() smtpReply {
	c.t.Helper()
	var r smtpReply
	for {
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply (got %q so far, %+v): %v", line, r, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			c.t.Fatalf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || (r.Code != 0 && code != r.Code) {
			c.t.Fatalf("malformed reply line %q after %+v", line, r)
		}
		r.Code = code
		r.Lines = append(r.Lines, strings.TrimPrefix(strings.TrimPrefix(line[3:], "-"), " "))
		if len(line) == 3 || line[3] == ' ' {
			return r
		}
	}
}

// startTLS runs STARTTLS (RFC 3207) and switches to TLS; the caller must
// send EHLO again.
func (c *rawSMTP) startTLS(cfg *tls.Config) {
	c.t.Helper()
	if r := c.transact("STARTTLS"); r.Code != 220 {
		c.t.Fatalf("STARTTLS: %s", r)
	}
	if c.r.Buffered() > 0 {
		c.t.Fatalf("STARTTLS: %d bytes buffered after the 220 (command injection?)", c.r.Buffered())
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

// quit sends QUIT and closes the connection, ignoring errors.
func (c *rawSMTP) quit() {
	c.conn.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(c.conn, "QUIT\r\n")
	c.r.ReadString('\n')
	c.conn.Close()
}

// redactSMTP hides AUTH arguments in failure messages.
func redactSMTP(line string) string {
	if strings.HasPrefix(strings.ToUpper(line), "AUTH ") {
		return "AUTH (redacted)"
	}
	return line
}
