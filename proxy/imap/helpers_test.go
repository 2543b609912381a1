package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/passgate/passgate/authn"
	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/proxy"
)

func TestMain(m *testing.M) {
	testleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(proxy.PollerFunction))
}

// ioTimeout bounds every test read so a broken server fails the test
// instead of hanging it; it is not a performance threshold.
const ioTimeout = 20 * time.Second

// Accounts known to fakeAuth.
const (
	appUser     = "alice@example.org" // app password login
	appSecret   = "abcd-efgh-ijkl-mnop"
	escUser     = "esc@example.org" // secret with quoted-specials
	escSecret   = `we"ird\ pass`
	appID       = "ap-1"
	mfaUser     = "mfa@example.org" // primary password of an MFA account
	mfaSecret   = "primary-pw-7f3a"
	brokenUser  = "broken@example.org"  // Verify fails
	panicUser   = "panicky@example.org" // Verify panics
	downUser    = lt.DownUser           // upstream unavailable
	refusedUser = lt.RefusedUser        // upstream refuses
	deviceUser  = "device@example.org"  // right secret, another device, policy block
)

// fakeAuth decides logins from a table and records every attempt.
type fakeAuth struct {
	mu       sync.Mutex
	attempts []authn.Attempt
}

func (f *fakeAuth) Verify(_ context.Context, a authn.Attempt) (authn.Decision, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, a)
	f.mu.Unlock()
	user := strings.ToLower(a.Username)
	switch user {
	case brokenUser:
		return authn.Decision{}, errors.New("store: connection refused")
	case panicUser:
		panic("boom with " + a.Secret)
	case deviceUser:
		if a.Secret == appSecret {
			return authn.Decision{Result: authn.DeviceRefused, Username: user, AppPasswordID: appID}, nil
		}
	case mfaUser:
		if a.Secret == mfaSecret {
			return authn.Decision{Result: authn.PrimaryRefusedMFA, Username: user}, nil
		}
	case appUser, downUser, refusedUser, escUser:
		if a.Secret == appSecret || (user == escUser && a.Secret == escSecret) {
			return authn.Decision{Result: authn.OK, Username: user, AppPasswordID: appID, AppPasswordName: "phone"}, nil
		}
	default:
		return authn.Decision{Result: authn.UnknownUser}, nil
	}
	return authn.Decision{Result: authn.BadSecret, Username: user}, nil
}

func (f *fakeAuth) all() []authn.Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authn.Attempt(nil), f.attempts...)
}

func (f *fakeAuth) last(t *testing.T) authn.Attempt {
	t.Helper()
	all := f.all()
	if len(all) == 0 {
		t.Fatal("Verify was not called")
	}
	return all[len(all)-1]
}

const (
	upstreamCaps     = "IMAP4rev1 IDLE MOVE CONDSTORE"
	upstreamBuffered = "* 3 EXISTS\r\n" // sent by the upstream right after its OK
)

// newUpstream is linetest's fake upstream as a Dovecot IMAP login answers:
// its capabilities, a buffered untagged line and "Logged in as" the user.
func newUpstream() *lt.Upstream {
	return &lt.Upstream{Capability: upstreamCaps, Buffered: upstreamBuffered,
		TextFor: func(user string) string { return "Logged in as " + user }}
}

// peer returns the upstream side of the last successful upstream login.
func (e *env) peer(t *testing.T) *client {
	t.Helper()
	c := e.up.PeerConn(t)
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// env is a running Server with fakes: plain listener at addr, and an
// implicit-TLS listener at tlsAddr when the server has a TLSConfig.
type env struct {
	t        *testing.T
	srv      *Server
	auth     *fakeAuth
	up       *lt.Upstream
	logs     *testlog.Buffer
	addr     string
	tlsAddr  string
	serveErr chan error
}

// withTLS gives the server the test certificate.
func withTLS(s *Server) { s.TLSConfig = testcert.ServerConfig() }

// cleartext allows logins without TLS.
func cleartext(s *Server) { s.AllowCleartext = true }

// newEnv starts a server on 127.0.0.1:0; options adjust it before Serve.
// Cleanup shuts it down and checks Serve returned ErrServerClosed.
func newEnv(t *testing.T, opts ...func(*Server)) *env {
	t.Helper()
	logger, logs := testlog.New(slog.LevelDebug)
	e := &env{t: t, auth: &fakeAuth{}, up: newUpstream(), logs: logs, serveErr: make(chan error, 2)}
	e.srv = &Server{Auth: e.auth, Upstream: e.up, Logger: logger}
	for _, o := range opts {
		o(e.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go func() { e.serveErr <- e.srv.Serve(ln) }()
	serving := 1
	if e.srv.TLSConfig != nil {
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.tlsAddr = tln.Addr().String()
		go func() { e.serveErr <- e.srv.ServeTLS(tln) }()
		serving++
	}
	t.Cleanup(func() {
		// Upstream ends no test claimed: close them so relays can end.
		e.up.CloseUnclaimed()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range serving {
			if err := <-e.serveErr; !errors.Is(err, proxy.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return e
}

// client is one side of a test connection.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// connected dials the plain listener.
func (e *env) connected() *client {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &client{t: e.t, conn: c, r: bufio.NewReader(c)}
}

// greeted dials the plain listener and reads the greeting.
func (e *env) greeted() *client {
	e.t.Helper()
	c := e.connected()
	c.expectPrefix("* OK [CAPABILITY ")
	return c
}

// greetedTLS dials the implicit-TLS listener and reads the greeting.
func (e *env) greetedTLS() *client {
	e.t.Helper()
	c := e.connectedTLS()
	c.expectPrefix("* OK [CAPABILITY ")
	return c
}

// connectedTLS dials the implicit-TLS listener.
func (e *env) connectedTLS() *client {
	e.t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e.tlsAddr, testcert.ClientConfig("localhost"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { tc.Close() })
	return &client{t: e.t, conn: tc, r: bufio.NewReader(tc)}
}

// loggedIn logs in as appUser with LOGIN and returns the client and the
// upstream peer.
func (e *env) loggedIn() (*client, *client) {
	e.t.Helper()
	c := e.greeted()
	c.expectTagged("a", "LOGIN alice@example.org "+appSecret, "a OK ")
	return c, e.peer(e.t)
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one line, CRLF stripped.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end with CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line and checks it exactly.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectPrefix reads one line and checks its start.
func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q, want a line starting with %q", got, prefix)
	}
	return got
}

// transact sends "tag cmd" and returns every line up to and including the
// tagged one.
func (c *client) transact(tag, cmd string) []string {
	c.t.Helper()
	c.send(tag + " " + cmd + "\r\n")
	return c.untilTagged(tag)
}

// untilTagged reads lines up to and including the one tagged tag.
func (c *client) untilTagged(tag string) []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines
		}
	}
}

// expectTagged runs transact and checks the tagged line's start.
func (c *client) expectTagged(tag, cmd, prefix string) []string {
	c.t.Helper()
	lines := c.transact(tag, cmd)
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, prefix) {
		c.t.Fatalf("%s %s: got %q, want a tagged line starting with %q", tag, cmd, lines, prefix)
	}
	return lines
}

// expectClosed checks that the server closed the connection (EOF or
// reset) without sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.r.ReadString('\n')
	var ne net.Error
	switch {
	case err == nil || b != "":
		c.t.Fatalf("read %q after the expected close", b)
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatal("connection still open")
	}
}

// startTLS runs STARTTLS on c and switches it to TLS.
func (c *client) startTLS() {
	c.t.Helper()
	c.expectTagged("s", "STARTTLS", "s OK ")
	tc := tls.Client(c.conn, testcert.ClientConfig("localhost"))
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// loopback is the client address every test connection comes from.
var loopback = netip.MustParseAddr("127.0.0.1")
