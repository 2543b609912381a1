package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// faultLoginTimeout is the upstream login deadline of the fault tests: what
// a stalled upstream costs a client before it gets NO [UNAVAILABLE].
const faultLoginTimeout = 300 * time.Millisecond

const (
	upstreamGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] upstream ready"
	noUpstream       = "a NO [UNAVAILABLE] Mail server unavailable, try again later"
)

// upstreamScript is the server side of one scripted upstream connection.
type upstreamScript struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

func (s *upstreamScript) send(lines ...string) {
	s.conn.SetWriteDeadline(deadline())
	s.conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
}

// line reads the client's next line; "" on error.
func (s *upstreamScript) line() string {
	s.conn.SetReadDeadline(deadline())
	l, _ := s.r.ReadString('\n')
	return strings.TrimSuffix(l, "\r\n")
}

// reset closes the connection with a TCP RST, as a crashed host's stack
// or a firewall does.
func (s *upstreamScript) reset() {
	s.conn.SetLinger(0)
	s.conn.Close()
}

// hold waits until the client closes (or the test's deadline).
func (s *upstreamScript) hold() {
	s.conn.SetReadDeadline(deadline())
	for {
		if _, err := s.r.ReadByte(); err != nil {
			return
		}
	}
}

// answer reads the client's next command and answers it with its tag and
// reply; it reports whether a command came.
func (s *upstreamScript) answer(reply string) bool {
	tag, _, _ := strings.Cut(s.line(), " ")
	if tag == "" {
		return false
	}
	s.send(tag + " " + reply)
	return true
}

// greet sends the greeting and answers passgate's ID (SendID).
func (s *upstreamScript) greet() {
	s.send(upstreamGreeting)
	s.answer("OK ID done")
}

// probe answers the capability probe a Server runs when it starts serving:
// the greeting, then LOGOUT.
func (s *upstreamScript) probe() {
	s.send(upstreamGreeting)
	if tag, _, _ := strings.Cut(s.line(), " "); tag != "" {
		s.send("* BYE Logging out", tag+" OK Logout completed")
	}
}

// scriptedUpstream returns the address of a listener on 127.0.0.1:0 that
// answers its first connection as the start-up capability probe of the
// Server the test starts next, and runs script for each later one; cleanup
// closes the listener and waits for the scripts.
func scriptedUpstream(t *testing.T, script func(s *upstreamScript)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for probed := false; ; probed = true {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := &upstreamScript{conn: c.(*net.TCPConn), r: bufio.NewReader(c)}
			if probed {
				script(s)
			} else {
				s.probe()
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

// withUpstream makes the server log in to the IMAP upstream at addr as a
// master user, as passgate serve does.
func withUpstream(addr string) func(*Server) {
	return func(s *Server) {
		s.Upstream = &upstream.IMAP{Address: addr, MasterUser: "proxy", MasterSecret: "master-secret-1",
			SendID: true, DialTimeout: faultLoginTimeout, LoginTimeout: faultLoginTimeout}
	}
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestUpstreamFaultsDuringLogin: whatever goes wrong with the upstream
// while passgate logs in to it, the client gets NO [UNAVAILABLE] (or the
// upstream's refusal) in bounded time and can try again on the same
// connection.
func TestUpstreamFaultsDuringLogin(t *testing.T) {
	tests := []struct {
		name   string
		script func(s *upstreamScript) // nil: connection refused
		want   string
	}{
		{"connection refused", nil, noUpstream},
		{"accepts, never greets", func(s *upstreamScript) { s.hold() }, noUpstream},
		{"closes at once", func(s *upstreamScript) {}, noUpstream},
		{"resets at once", func(s *upstreamScript) { s.reset() }, noUpstream},
		{"closes after the greeting", func(s *upstreamScript) { s.send(upstreamGreeting) }, noUpstream},
		{"closes after our AUTHENTICATE", func(s *upstreamScript) {
			s.greet()
			s.line()
		}, noUpstream},
		{"resets after our AUTHENTICATE", func(s *upstreamScript) {
			s.greet()
			s.line()
			s.reset()
		}, noUpstream},
		{"never answers our AUTHENTICATE", func(s *upstreamScript) {
			s.greet()
			s.hold()
		}, noUpstream},
		{"HTTP instead of a greeting", func(s *upstreamScript) {
			s.send("HTTP/1.1 400 Bad Request", "Content-Length: 0", "")
		}, noUpstream},
		{"binary garbage greeting", func(s *upstreamScript) {
			s.send("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
			s.hold()
		}, noUpstream},
		{"endless greeting line", func(s *upstreamScript) {
			s.conn.Write([]byte("* OK " + strings.Repeat("x", 1<<20)))
			s.hold()
		}, noUpstream},
		{"garbage after our AUTHENTICATE", func(s *upstreamScript) {
			s.greet()
			s.line()
			s.send("\x00\x01garbage\xff")
			s.hold()
		}, noUpstream},
		{"BYE greeting", func(s *upstreamScript) { s.send("* BYE Too many connections") }, noUpstream},
		{"PREAUTH greeting", func(s *upstreamScript) { s.send("* PREAUTH [CAPABILITY IMAP4rev1] hi root"); s.hold() }, noUpstream},
		{"BYE instead of the login answer", func(s *upstreamScript) {
			s.greet()
			s.line()
			s.send("* BYE Server shutting down")
		}, noUpstream},
		{"NO [UNAVAILABLE] to our login", func(s *upstreamScript) {
			s.greet()
			s.answer("NO [UNAVAILABLE] Backend down")
			s.hold()
		}, noUpstream},
		{"NO [AUTHORIZATIONFAILED] to our login", func(s *upstreamScript) {
			s.greet()
			s.answer("NO [AUTHORIZATIONFAILED] No such user")
			s.hold()
		}, "a NO [AUTHORIZATIONFAILED] Mail server refused the login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := closedPort(t)
			if tt.script != nil {
				addr = scriptedUpstream(t, tt.script)
			}
			e := newEnv(t, cleartext, withUpstream(addr))
			c := e.greeted()
			c.expectTagged("a", "LOGIN "+appUser+" "+appSecret, tt.want)
			c.expectTagged("x", "NOOP", "x OK NOOP completed")
			if logs := e.logs.String(); strings.Contains(logs, appSecret) || strings.Contains(logs, "master-secret-1") {
				t.Errorf("a secret was logged:\n%s", logs)
			}
		})
	}
}

// TestUpstreamDiesMidSession: after the splice started, the upstream goes
// away (FIN or RST). The client sees its connection closed, without
// garbage; passgate logs the end of the session; no goroutine is left.
func TestUpstreamDiesMidSession(t *testing.T) {
	tests := []struct {
		name string
		end  func(s *upstreamScript)
		log  string // in the session's end line
	}{
		{"closes", func(s *upstreamScript) { s.conn.Close() }, "imap session ended"},
		{"resets", func(s *upstreamScript) { s.reset() }, "connection reset by peer"},
		{"closes inside a literal", func(s *upstreamScript) {
			s.send("* 1 FETCH (BODY[] {100}", "partial")
			s.conn.Close()
		}, "imap session ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ended := make(chan struct{})
			addr := scriptedUpstream(t, func(s *upstreamScript) {
				defer close(ended)
				s.greet()
				if !s.answer("OK [CAPABILITY IMAP4rev1 IDLE] Logged in") {
					return
				}
				if l := s.line(); l != "b SELECT INBOX" {
					return
				}
				s.send("* 2 EXISTS", "b OK [READ-WRITE] SELECT completed")
				tt.end(s)
			})
			e := newEnv(t, cleartext, withUpstream(addr))
			before := goleak.IgnoreCurrent()
			c := e.greeted()
			c.expectTagged("a", "LOGIN "+appUser+" "+appSecret, "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
			c.expectTagged("b", "SELECT INBOX", "b OK [READ-WRITE]")
			<-ended
			c.conn.SetReadDeadline(deadline())
			rest, err := c.r.ReadString(0)
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the client's connection stayed open after the upstream went away (read %q)", rest)
			}
			if rest != "" && !strings.HasPrefix(rest, "* 1 FETCH (BODY[] {100}\r\npartial") {
				t.Errorf("after the upstream went away the client read %q", rest)
			}
			// passgate ends the session by itself, whether or not the
			// client closes its side.
			if err := testleak.Find(before, goleak.IgnoreAnyFunction(proxy.PollerFunction),
				goleak.IgnoreTopFunction("github.com/passgate/passgate/proxy.(*workers).work")); err != nil {
				t.Errorf("the session left goroutines behind: %v", err)
			}
			if logs := e.logs.String(); !strings.Contains(logs, tt.log) {
				t.Errorf("the end of the session was not logged (want %q):\n%s", tt.log, logs)
			}
		})
	}
}

// failingStore is a store whose reads fail, as a bbolt file on a dead disk
// or an unreachable Redis does.
type failingStore struct {
	store.Store // nil: any other method panics, which the test would see
	getAccount  error
	lookupKey   error
}

func (f *failingStore) GetAccount(context.Context, string) (store.Account, error) {
	if f.getAccount != nil {
		return store.Account{}, f.getAccount
	}
	return store.Account{Username: appUser, Created: time.Now()}, nil
}

func (f *failingStore) LookupKey(context.Context) ([]byte, error) {
	if f.lookupKey != nil {
		return nil, f.lookupKey
	}
	return make([]byte, 32), nil
}

// TestStoreErrors: when the store fails, a real authn.Verifier makes no
// decision and the client gets NO [UNAVAILABLE], with no upstream dial,
// and may retry.
func TestStoreErrors(t *testing.T) {
	down := fmt.Errorf("bolt: read: %w", store.ErrUnavailable)
	for _, fs := range []*failingStore{{getAccount: down}, {lookupKey: down}} {
		name := "GetAccount fails"
		if fs.lookupKey != nil {
			name = "LookupKey fails"
		}
		t.Run(name, func(t *testing.T) {
			v := &authn.Verifier{Store: fs, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}}
			e := newEnv(t, cleartext, func(s *Server) { s.Auth = v })
			c := e.greeted()
			const unavailable = "NO [UNAVAILABLE] Authentication service unavailable, try again later"
			c.expectTagged("a", "LOGIN "+appUser+" "+appSecret, "a "+unavailable)
			c.expectTagged("b", "AUTHENTICATE PLAIN "+plainIR("", appUser, appSecret), "b "+unavailable)
			c.expectTagged("x", "NOOP", "x OK NOOP completed")
			if n := len(e.up.Logins()); n != 0 {
				t.Errorf("%d upstream logins after store failures", n)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "store unavailable") || strings.Contains(logs, appSecret) {
				t.Errorf("logs should name the store failure and never the secret:\n%s", logs)
			}
		})
	}
}
