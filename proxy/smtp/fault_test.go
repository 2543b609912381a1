package smtp

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy"
)

// faultTimeout is the upstream DialTimeout, LoginTimeout and CommandTimeout
// of the fault tests: what a stalled upstream costs a client before it gets
// 454 or 451.
const faultTimeout = 300 * time.Millisecond

const (
	replyTempAuth       = "454 4.7.0 Temporary authentication failure, try again later"
	replyUpstreamFailed = "451 4.3.0 Upstream failed, message not accepted"
	upstreamEHLO        = "250-up.test\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760"
)

// upScript is the server side of one scripted upstream connection.
type upScript struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

func (s *upScript) send(lines ...string) {
	s.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	s.conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
}

// line reads passgate's next line; "" on error.
func (s *upScript) line() string {
	l, _ := s.readLine()
	return l
}

func (s *upScript) readLine() (string, error) {
	s.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := s.r.ReadString('\n')
	return strings.TrimSuffix(l, "\r\n"), err
}

// answer reads passgate's next command and sends reply; it reports whether
// a command came.
func (s *upScript) answer(reply string) bool {
	if s.line() == "" {
		return false
	}
	s.send(reply)
	return true
}

// hold waits until passgate closes (or the test's deadline).
func (s *upScript) hold() {
	s.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		if _, err := s.r.ReadByte(); err != nil {
			return
		}
	}
}

// reset closes the connection with a TCP RST, as a crashed host does.
func (s *upScript) reset() {
	s.conn.SetLinger(0)
	s.conn.Close()
}

// greet sends the greeting and answers EHLO.
func (s *upScript) greet() bool {
	s.send("220 up.test ESMTP")
	return s.answer(upstreamEHLO)
}

// login greets and accepts passgate's AUTH.
func (s *upScript) login() bool {
	return s.greet() && s.answer("235 2.7.0 Authentication successful")
}

// toData logs in and accepts MAIL, RCPT and DATA.
func (s *upScript) toData() bool {
	return s.login() && s.answer("250 2.1.0 Ok") && s.answer("250 2.1.5 Ok") && s.answer("354 End data with <CR><LF>.<CR><LF>")
}

// body reads the message up to the final dot; it reports whether the dot
// came.
func (s *upScript) body() bool {
	for {
		l, err := s.readLine()
		if err != nil {
			return false
		}
		if l == "." {
			return true
		}
	}
}

// probe answers passgate's start-up probe: EHLO, then QUIT.
func (s *upScript) probe() {
	s.greet()
	s.answer("221 2.0.0 Bye")
}

// scriptedUpstream answers passgate's probe, then runs script for each
// further connection to a listener on 127.0.0.1:0, one at a time, and
// returns the listener's address; cleanup closes the listener and waits.
func scriptedUpstream(t *testing.T, script func(s *upScript)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := &upScript{conn: c.(*net.TCPConn), r: bufio.NewReader(c)}
			if i == 0 {
				s.probe()
			} else {
				script(s)
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// faultEnv is passgate in front of the scripted upstream (nil: nothing
// listens), with an Authenticator that records upstream-error audits.
func faultEnv(t *testing.T, script func(s *upScript)) (*env, auditSpy) {
	t.Helper()
	addr := testtool.ClosedAddr(t)
	if script != nil {
		addr = scriptedUpstream(t, script)
	}
	spy := auditSpy{&fakeAuth{}, make(chan authn.Attempt, 4)}
	e := newEnv(t, nil, func(s *Server) {
		s.Auth = spy
		upstreamOf(s).Address = addr
		upstreamOf(s).DialTimeout = faultTimeout
		upstreamOf(s).LoginTimeout = faultTimeout
		upstreamOf(s).CommandTimeout = faultTimeout
	})
	return e, spy
}

// checkEnd quits and checks that no secret was logged and that the session
// left no goroutine behind.
func checkEnd(t *testing.T, e *env, c *badConn, before goleak.Option) {
	t.Helper()
	c.transactWant("QUIT", 221, "")
	c.expectClosed()
	if logs := e.logs.String(); strings.Contains(logs, appSecret) || strings.Contains(logs, masterSecret) {
		t.Errorf("a secret was logged:\n%s", logs)
	}
	if err := testleak.Find(before, goleak.IgnoreAnyFunction(proxy.PollerFunction)); err != nil {
		t.Errorf("the session left goroutines behind: %v", err)
	}
}

// TestUpstreamFaultsDuringAuth: whatever goes wrong with the upstream while
// passgate logs in to it, the client's AUTH gets 454 in bounded time (RFC
// 4954 §6), the failure is audited, nothing is accepted, and the client may
// try again on the same connection.
func TestUpstreamFaultsDuringAuth(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script func(s *upScript) // nil: connection refused
	}{
		{"connection refused", nil},
		{"accepts, never greets", func(s *upScript) { s.hold() }},
		{"closes at once", func(s *upScript) {}},
		{"resets at once", func(s *upScript) { s.reset() }},
		{"closes after the greeting", func(s *upScript) { s.send("220 up.test ESMTP") }},
		{"421 greeting", func(s *upScript) { s.send("421 4.3.2 Service shutting down") }},
		{"554 greeting", func(s *upScript) { s.send("554 5.3.2 No SMTP service here"); s.hold() }},
		{"HTTP instead of a greeting", func(s *upScript) { s.send("HTTP/1.1 400 Bad Request", "Content-Length: 0", "") }},
		{"binary garbage greeting", func(s *upScript) { s.send("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"); s.hold() }},
		{"endless greeting line", func(s *upScript) {
			s.conn.Write([]byte("220 " + strings.Repeat("x", 1<<20)))
			s.hold()
		}},
		{"no EHLO, HELO only", func(s *upScript) {
			s.send("220 up.test SMTP")
			s.answer("502 5.5.2 Error: command not recognized")
			s.answer("250 up.test")
			s.hold()
		}},
		{"EHLO without AUTH", func(s *upScript) {
			s.send("220 up.test ESMTP")
			s.answer("250-up.test\r\n250 8BITMIME")
			s.hold()
		}},
		{"never answers EHLO", func(s *upScript) { s.send("220 up.test ESMTP"); s.hold() }},
		{"closes on our AUTH", func(s *upScript) { s.greet(); s.line() }},
		{"resets on our AUTH", func(s *upScript) { s.greet(); s.line(); s.reset() }},
		{"never answers our AUTH", func(s *upScript) { s.greet(); s.hold() }},
		{"garbage answer to our AUTH", func(s *upScript) { s.greet(); s.answer("\x00\x01garbage\xff"); s.hold() }},
		{"535 to our AUTH", func(s *upScript) {
			s.greet()
			s.answer("535 5.7.8 Error: authentication failed")
			s.hold()
		}},
		{"421 to our AUTH", func(s *upScript) { s.greet(); s.answer("421 4.7.0 Too many errors") }},
		{"challenge to PLAIN", func(s *upScript) { s.greet(); s.answer("334 Zm9v"); s.hold() }},
		{"closes between LOGIN prompts", func(s *upScript) {
			s.send("220 up.test ESMTP")
			s.answer("250-up.test\r\n250 AUTH LOGIN")
			s.answer("334 VXNlcm5hbWU6")
			s.line()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, spy := faultEnv(t, tt.script)
			before := goleak.IgnoreCurrent()
			c := &badConn{textConn: dialText(t, e.addr)}
			c.transactWant("EHLO client.test", 250, "")
			c.sendRaw(plainIR("", appUser, appSecret) + "\r\n")
			c.expectLine(replyTempAuth)
			if n := len(spy.upstreamErrors); n != 1 {
				t.Errorf("%d upstream errors audited, want 1", n)
			} else if a := <-spy.upstreamErrors; a.SessionID == "" || a.Username != appUser || a.Mechanism != "PLAIN" {
				t.Errorf("audited attempt %+v", a)
			}
			c.transactWant("MAIL FROM:<"+appUser+">", 530, "5.7.0 Authentication required")
			c.transactWant("NOOP", 250, "")
			checkEnd(t, e, c, before)
		})
	}
}

// TestUpstreamFaultsDuringTransaction: after a successful AUTH, whatever
// goes wrong with the upstream gets 451 (the upstream's own 4xx text for a
// 421) and never 250: nothing is acknowledged that the upstream did not
// acknowledge. The session stays usable.
func TestUpstreamFaultsDuringTransaction(t *testing.T) {
	const body = "Subject: fault\r\n\r\nbody line\r\n"
	for _, tt := range []struct {
		name   string
		script func(s *upScript)
		failAt string // the client command that gets want: MAIL, RCPT or DATA (the final dot)
		want   string
	}{
		{"closes after AUTH (twice)", func(s *upScript) { s.login() }, "MAIL", replyUpstreamFailed},
		{"resets after AUTH (twice)", func(s *upScript) { s.login(); s.reset() }, "MAIL", replyUpstreamFailed},
		{"never answers MAIL", func(s *upScript) { s.login(); s.hold() }, "MAIL", replyUpstreamFailed},
		{"garbage answer to MAIL", func(s *upScript) { s.login(); s.answer("\x00garbage"); s.hold() }, "MAIL", replyUpstreamFailed},
		{"421 to MAIL", func(s *upScript) { s.login(); s.answer("421 4.3.2 System shutting down") },
			"MAIL", "451 4.3.2 System shutting down"},
		{"closes on RCPT", func(s *upScript) { s.login(); s.answer("250 2.1.0 Ok"); s.line() }, "RCPT", replyUpstreamFailed},
		{"never answers RCPT", func(s *upScript) { s.login(); s.answer("250 2.1.0 Ok"); s.hold() }, "RCPT", replyUpstreamFailed},
		{"closes on DATA", func(s *upScript) {
			s.login()
			s.answer("250 2.1.0 Ok")
			s.answer("250 2.1.5 Ok")
			s.line()
		}, "DATA", replyUpstreamFailed},
		{"never answers DATA", func(s *upScript) {
			s.login()
			s.answer("250 2.1.0 Ok")
			s.answer("250 2.1.5 Ok")
			s.hold()
		}, "DATA", replyUpstreamFailed},
		{"dies mid-body", func(s *upScript) {
			if s.toData() {
				s.line()
				s.reset()
			}
		}, "DATA", replyUpstreamFailed},
		{"closes after the final dot", func(s *upScript) { s.toData(); s.body() }, "DATA", replyUpstreamFailed},
		{"never answers the final dot", func(s *upScript) {
			if s.toData() && s.body() {
				s.hold()
			}
		}, "DATA", replyUpstreamFailed},
		{"garbage answer to the final dot", func(s *upScript) {
			if s.toData() && s.body() {
				s.send("2x0 queued?")
				s.hold()
			}
		}, "DATA", replyUpstreamFailed},
		{"421 to the final dot", func(s *upScript) {
			if s.toData() && s.body() {
				s.send("421 4.4.2 Timeout exceeded")
			}
		}, "DATA", "451 4.4.2 Timeout exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, spy := faultEnv(t, tt.script)
			before := goleak.IgnoreCurrent()
			c := &badConn{textConn: dialText(t, e.addr)}
			c.transactWant("EHLO client.test", 250, "")
			c.transactWant(plainIR("", appUser, appSecret), 235, "")
			cmds := []struct{ cmd, reply string }{
				{"MAIL", "MAIL FROM:<" + appUser + ">\r\n"},
				{"RCPT", "RCPT TO:<bob@example.net>\r\n"},
			}
			for _, cmd := range cmds {
				c.sendRaw(cmd.reply)
				if cmd.cmd == tt.failAt {
					c.expectLine(tt.want)
					break
				}
				c.expectLine(map[string]string{"MAIL": replyMailOK, "RCPT": replyRcptOK}[cmd.cmd])
			}
			if tt.failAt == "DATA" {
				// go-smtp says 354 before passgate asks the upstream; the
				// verdict comes after the final dot.
				c.transactWant("DATA", 354, "")
				c.c.SetWriteDeadline(time.Now().Add(ioTimeout))
				if _, err := io.WriteString(c.c, body+strings.Repeat("filler line of the message body\r\n", 4096)+".\r\n"); err != nil {
					t.Fatalf("body: %v", err) // passgate reads it all, whatever the upstream does
				}
				c.expectLine(tt.want)
			}
			if n := len(spy.upstreamErrors); n != 0 {
				t.Errorf("%d upstream errors audited after a successful AUTH, want 0", n)
			}
			c.transactWant("RSET", 250, "")
			c.transactWant("NOOP", 250, "")
			checkEnd(t, e, c, before)
		})
	}
}
