package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store/memcount"
)

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// guarded puts an authn.Guard (no delays) in front of the env's fakeAuth.
func guarded(l authn.Limits) func(*Server) {
	return func(s *Server) {
		s.Auth = &authn.Guard{Verifier: s.Auth, Counters: &memcount.Counters{}, Limits: l,
			Sleep: func(context.Context, time.Duration) error { return nil }}
	}
}

func TestRateLimitedReply(t *testing.T) {
	e := newEnv(t, cleartext, guarded(authn.Limits{MaxPerAddress: 2}))
	c := e.greeted()
	c.expectTagged("a", "LOGIN alice@example.org wrong1", "a NO [AUTHENTICATIONFAILED] Invalid credentials")
	c.expectTagged("b", "LOGIN alice@example.org wrong2", "b NO [AUTHENTICATIONFAILED] Invalid credentials")
	// The right secret from the blocked address is refused, unverified.
	verified := len(e.auth.all())
	c.expectTagged("c", "LOGIN alice@example.org "+appSecret, "c NO [UNAVAILABLE] Too many failed logins, try again later")
	c.expect("* BYE Too many failed logins") // the third failure on this connection
	c.expectClosed()
	c = e.greeted()
	c.expectTagged("d", "AUTHENTICATE PLAIN "+plainIR("", appUser, appSecret), "d NO [UNAVAILABLE] ")
	if n := len(e.auth.all()) - verified; n != 0 {
		t.Errorf("refused logins reached the verifier %d times", n)
	}
	if n := len(e.up.Logins()); n != 0 {
		t.Errorf("%d upstream logins for refused attempts", n)
	}
}

func TestAttemptCarriesTLSAndSession(t *testing.T) {
	e := newEnv(t, withTLS)
	c := e.greetedTLS()
	c.expectTagged("a", "LOGIN alice@example.org wrong", "a NO ")
	a := e.auth.last(t)
	if a.TLS != "TLS 1.3" || a.SessionID == "" {
		t.Errorf("attempt TLS %q, session %q; want TLS 1.3 and an id", a.TLS, a.SessionID)
	}
	if !strings.Contains(e.logs.String(), "session="+a.SessionID) {
		t.Errorf("session id %q is not the one in the log:\n%s", a.SessionID, e.logs.String())
	}
	p := e.greeted()
	p.startTLS()
	p.expectTagged("b", "LOGIN alice@example.org wrong", "b NO ")
	if a := e.auth.last(t); a.TLS != "TLS 1.3" {
		t.Errorf("after STARTTLS: attempt TLS %q", a.TLS)
	}
}

func TestConnectionLimits(t *testing.T) {
	limit := &proxy.ConnLimiter{Max: 3, PerIP: 2}
	e := newEnv(t, withTLS, func(s *Server) { s.Limits.Conns = limit })
	first := e.greeted()
	e.greetedTLS()
	for _, c := range []*client{e.connected(), e.connectedTLS()} {
		c.expect("* BYE Too many connections")
		c.expectClosed()
	}
	// Ending a connection frees its slot.
	first.expectTagged("z", "LOGOUT", "z OK ")
	first.expectClosed()
	e.greeted()
	// The total: a third address is refused once 3 are open.
	e.connected().expect("* BYE Too many connections")
	if total, _ := limit.Open(netipLoopback); total != 2 {
		t.Errorf("%d connections counted, want 2", total)
	}
}

// TestGuessingRunFromLoopback is the scripted guessing run of the issue,
// with real time (small delays): an attacker on 127.0.0.2..5 guesses the
// owner's password over IMAP, the owner on 127.0.0.1 logs in before and
// during the attack. It checks outcomes only; the delays are logged for
// the report (go test -run GuessingRun -v).
func TestGuessingRunFromLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time tarpit run")
	}
	limits := authn.Limits{TarpitBase: 10 * time.Millisecond, TarpitMax: 160 * time.Millisecond,
		MaxPerAccount: 10}
	e := newEnv(t, cleartext, func(s *Server) {
		s.Auth = &authn.Guard{Verifier: s.Auth, Counters: &memcount.Counters{}, Limits: limits}
	})

	owner := e.greeted()
	owner.expectTagged("o1", "LOGIN alice@example.org "+appSecret, "o1 OK ")
	e.peer(t)

	var conn *client
	var onConn, refused int
	for i := range 20 {
		src := fmt.Sprintf("127.0.0.%d", 2+i/5) // 5 guesses per address
		if conn == nil || onConn == 3 || i%5 == 0 {
			conn = e.dialFrom(src)
			onConn = 0
		}
		start := time.Now()
		lines := conn.transact("g", fmt.Sprintf("LOGIN alice@example.org guess%02d", i))
		took := time.Since(start)
		onConn++
		reply := lines[len(lines)-1]
		if strings.Contains(reply, "UNAVAILABLE") {
			refused++
		} else if !strings.Contains(reply, "AUTHENTICATIONFAILED") {
			t.Fatalf("guess %d: %q", i+1, reply)
		}
		t.Logf("guess %2d from %s: %-60s after %v", i+1, src, reply, took.Round(time.Millisecond))
		if onConn == 3 {
			conn.expect("* BYE Too many failed logins")
		}
	}
	// 4 addresses × 5 guesses: the first 10 are verified; then the account
	// is closed to every address but the owner's.
	if refused != 10 {
		t.Errorf("%d of 20 guesses refused, want 10", refused)
	}
	start := time.Now()
	owner2 := e.greeted()
	owner2.expectTagged("o2", "LOGIN alice@example.org "+appSecret, "o2 OK ")
	t.Logf("owner from 127.0.0.1 during the attack: OK after %v", time.Since(start).Round(time.Millisecond))
	e.peer(t)
	fresh := e.dialFrom("127.0.0.9")
	fresh.expectTagged("f", "LOGIN alice@example.org "+appSecret, "f NO [UNAVAILABLE] ")
}

// dialFrom connects to the plain listener from a loopback source address
// and reads the greeting.
func (e *env) dialFrom(src string) *client {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: ioTimeout}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Skipf("cannot dial from %s: %v", src, err)
	}
	e.t.Cleanup(func() { nc.Close() })
	c := &client{t: e.t, conn: nc, r: bufio.NewReader(nc)}
	c.expectPrefix("* OK ")
	return c
}
