package upstream

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testleak"
)

func TestMain(m *testing.M) { testleak.VerifyTestMain(m) }

// scriptDeadline bounds each read and write of a scripted server, so that a
// broken client fails the test instead of hanging it.
const scriptDeadline = 20 * time.Second

// script is the server side of one scripted upstream connection. The first
// failure is kept and later steps do nothing, so a script reads straight.
type script struct {
	conn net.Conn
	br   *bufio.Reader
	err  error
}

func (s *script) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

// send writes lines, each followed by CRLF, in one write.
func (s *script) send(lines ...string) {
	s.sendRaw(strings.Join(lines, "\r\n") + "\r\n")
}

// sendRaw writes b as is.
func (s *script) sendRaw(b string) {
	if s.err != nil {
		return
	}
	s.conn.SetWriteDeadline(time.Now().Add(scriptDeadline))
	if _, err := s.conn.Write([]byte(b)); err != nil {
		s.fail("send %q: %v", b, err)
	}
}

// line reads the client's next line (without CRLF).
func (s *script) line() string {
	if s.err != nil {
		return ""
	}
	s.conn.SetReadDeadline(time.Now().Add(scriptDeadline))
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.fail("read: %v (after %q)", err, l)
		return ""
	}
	if !strings.HasSuffix(l, "\r\n") {
		s.fail("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line that must match the anchored regexp pattern and
// returns its submatches (index 0 is the whole line).
func (s *script) expect(pattern string) []string {
	l := s.line()
	if s.err != nil {
		return make([]string, 10)
	}
	m := regexp.MustCompile("^" + pattern + "$").FindStringSubmatch(l)
	if m == nil {
		s.fail("client sent %q, want /%s/", l, pattern)
		return make([]string, 10)
	}
	return m
}

// expectEOF waits for the client to close.
func (s *script) expectEOF() {
	if s.err != nil {
		return
	}
	s.conn.SetReadDeadline(time.Now().Add(scriptDeadline))
	if l, err := s.br.ReadString('\n'); err == nil || l != "" {
		s.fail("client sent %q, want close", l)
	}
}

// startTLS turns the server side into TLS.
func (s *script) startTLS() {
	if s.err != nil {
		return
	}
	if s.br.Buffered() > 0 {
		s.fail("client sent bytes before the TLS handshake")
		return
	}
	tc := tls.Server(s.conn, testcert.ServerConfig())
	tc.SetDeadline(time.Now().Add(scriptDeadline))
	if err := tc.Handshake(); err != nil {
		s.fail("TLS handshake: %v", err)
		return
	}
	s.conn, s.br = tc, bufio.NewReader(tc)
}

// serve runs fn as the server of one connection on 127.0.0.1:0 (over TLS
// from the start if implicitTLS) and returns the address. The test fails if
// the script failed; cleanup waits for it.
func serve(t *testing.T, implicitTLS bool, fn func(s *script)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := &script{conn: c, br: bufio.NewReader(c)}
		if implicitTLS {
			tc := tls.Server(c, testcert.ServerConfig())
			s.conn, s.br = tc, bufio.NewReader(tc)
		}
		fn(s)
		done <- s.err
	}()
	t.Cleanup(func() {
		ln.Close() // unblocks Accept if the client never came
		if err := <-done; err != nil && !strings.Contains(err.Error(), "use of closed network connection") {
			t.Errorf("scripted server: %v", err)
		}
	})
	return ln.Addr().String()
}
