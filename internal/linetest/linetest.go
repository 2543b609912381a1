// Package linetest runs protocol transcripts against passgate's line
// front-ends (POP3, ManageSieve) in-process: a fake Authenticator with a
// fixed set of accounts, a fake Upstream that hands out one end of a
// loopback connection (the IMAP front-end's tests use it too), a line
// client that can switch to TLS, and Serve and FuzzSession to run a
// front-end on 127.0.0.1:0.
package linetest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy/upstream"
)

// IOTimeout bounds every read so that a broken server fails the test
// instead of hanging it; it is not a performance threshold.
const IOTimeout = 20 * time.Second

// Accounts known to Auth.
const (
	AppUser    = "alice@example.org" // AppSecret is an app password
	AppSecret  = "abcd-efgh-ijkl-mnop"
	MFAUser    = "mfa@example.org" // MFASecret is a refused primary password
	MFASecret  = "primary-pw-7f3a"
	DownUser   = "down@example.org"   // AppSecret is right, the upstream is down
	BrokenUser = "broken@example.org" // Verify fails
	DeviceUser = "device@example.org" // AppSecret is right, from another device, policy block
)

// RefusedUser is refused by Upstream's login (AUTHORIZATIONFAILED); Auth
// does not know it.
const RefusedUser = "refused@example.org"

// Auth decides logins from the accounts above and records each attempt.
type Auth struct {
	mu       sync.Mutex
	attempts []authn.Attempt
}

// Verify implements proxy.Authenticator.
func (f *Auth) Verify(_ context.Context, a authn.Attempt) (authn.Decision, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, a)
	f.mu.Unlock()
	user := strings.ToLower(a.Username)
	switch {
	case user == BrokenUser:
		return authn.Decision{}, errors.New("store: connection refused")
	case user == DeviceUser && a.Secret == AppSecret:
		return authn.Decision{Result: authn.DeviceRefused, Username: user, AppPasswordID: "ap-2"}, nil
	case user == MFAUser && a.Secret == MFASecret:
		return authn.Decision{Result: authn.PrimaryRefusedMFA, Username: user}, nil
	case (user == AppUser || user == DownUser) && a.Secret == AppSecret:
		return authn.Decision{Result: authn.OK, Username: user, AppPasswordID: "ap-1", AppPasswordName: "phone"}, nil
	case user == AppUser || user == DownUser || user == MFAUser:
		return authn.Decision{Result: authn.BadSecret, Username: user}, nil
	}
	return authn.Decision{Result: authn.UnknownUser}, nil
}

// Attempts returns the attempts so far.
func (f *Auth) Attempts() []authn.Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authn.Attempt(nil), f.attempts...)
}

// Upstream logs users in to a loopback connection whose far end the test
// takes with Peer; Buffered stands for bytes the upstream sent right after
// its OK (Conn.Buffered). DownUser's login fails as unavailable,
// RefusedUser's as refused.
type Upstream struct {
	Text string // the upstream's OK text
	// TextFor, if set, gives the OK text for a username instead of Text.
	TextFor    func(username string) string
	Capability string   // the upstream's post-login capabilities (IMAP)
	Caps       []string // what Capabilities reports (ManageSieve, IMAP)
	CapsErr    error    // what Capabilities fails with, if set
	Buffered   string
	// Passthrough is what NeedsClientSecret reports.
	Passthrough bool
	// Discard makes the upstream read and drop what it gets, until EOF,
	// instead of handing its side to Peer (fuzzing).
	Discard bool

	mu     sync.Mutex
	wg     sync.WaitGroup
	logins []upstream.Login
	peers  chan net.Conn
	once   sync.Once
	probes atomic.Int32
}

func (u *Upstream) init() { u.once.Do(func() { u.peers = make(chan net.Conn, 16) }) }

// NeedsClientSecret implements proxy.Upstream: false is master user mode.
func (u *Upstream) NeedsClientSecret() bool { return u.Passthrough }

// Capabilities answers a front-end's capability probe.
func (u *Upstream) Capabilities(context.Context) ([]string, error) {
	u.probes.Add(1)
	if u.CapsErr != nil {
		return nil, u.CapsErr
	}
	return u.Caps, nil
}

// Login implements proxy.Upstream.
func (u *Upstream) Login(_ context.Context, l upstream.Login) (*upstream.Conn, error) {
	u.init()
	u.mu.Lock()
	u.logins = append(u.logins, l)
	u.mu.Unlock()
	switch l.Username {
	case DownUser:
		return nil, fmt.Errorf("upstream dial: %w", upstream.ErrUnavailable)
	case RefusedUser:
		return nil, fmt.Errorf("upstream login: %w", &upstream.RefusedError{Code: "AUTHORIZATIONFAILED", Text: "no such user"})
	}
	near, far, err := tcpPair()
	if err != nil {
		return nil, err
	}
	if u.Discard {
		u.wg.Go(func() { io.Copy(io.Discard, far); far.Close() })
	} else {
		u.peers <- far
	}
	text := u.Text
	if u.TextFor != nil {
		text = u.TextFor(l.Username)
	}
	return &upstream.Conn{Conn: near, Buffered: []byte(u.Buffered), Capability: u.Capability, Text: text}, nil
}

// Probes returns how often Capabilities was called.
func (u *Upstream) Probes() int { return int(u.probes.Load()) }

// Wait waits for the discarding upstream sides to end.
func (u *Upstream) Wait() { u.wg.Wait() }

// Logins returns the upstream logins so far.
func (u *Upstream) Logins() []upstream.Login {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstream.Login(nil), u.logins...)
}

// Peer returns the upstream's side of the last successful login.
func (u *Upstream) Peer(t testing.TB) *Client {
	t.Helper()
	c := u.PeerConn(t)
	return &Client{t: t, c: c, r: bufio.NewReader(c)}
}

// PeerConn is Peer's connection, for a test with a client of its own; it
// is closed when the test ends.
func (u *Upstream) PeerConn(t testing.TB) net.Conn {
	t.Helper()
	u.init()
	select {
	case c := <-u.peers:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(IOTimeout):
		t.Fatal("no upstream connection")
		return nil
	}
}

// CloseUnclaimed closes the upstream sides no test took with Peer, so
// that the relays to them can end.
func (u *Upstream) CloseUnclaimed() {
	u.init()
	for len(u.peers) > 0 {
		(<-u.peers).Close()
	}
}

func tcpPair() (near, far net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	if near, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		return nil, nil, err
	}
	if far, err = ln.Accept(); err != nil {
		near.Close()
		return nil, nil, err
	}
	return near, far, nil
}

// Client is one end of a line protocol conversation.
type Client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// Dial connects to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{t: t, c: c, r: bufio.NewReader(c)}
}

// Line reads one line without its CRLF.
func (c *Client) Line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(IOTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// Send writes line and CRLF.
func (c *Client) Send(line string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(IOTimeout))
	if _, err := c.c.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// Expect reads len(want) lines and fails the test unless they are want.
func (c *Client) Expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		if got := c.Line(); got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// Cmd sends line and returns the next line.
func (c *Client) Cmd(line string) string {
	c.t.Helper()
	c.Send(line)
	return c.Line()
}

// Closed reports whether the other side ended the connection (EOF or
// reset before IOTimeout); a byte received instead fails the test.
func (c *Client) Closed() bool {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(IOTimeout))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("got %q, want the connection closed", b)
	}
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// StartTLS runs the client side of a TLS handshake trusting the test
// certificate.
func (c *Client) StartTLS() {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatalf("%d bytes after the STARTTLS reply", c.r.Buffered())
	}
	tc := tls.Client(c.c, testcert.ClientConfig("localhost"))
	c.c.SetDeadline(time.Now().Add(IOTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.c.SetDeadline(time.Time{})
	c.c, c.r = tc, bufio.NewReader(tc)
}

// Session sends session to the server at addr as one client, closes its
// sending side and fails the test unless the server ends the connection
// on its own (EOF or reset) within a minute: whatever it receives, a
// front-end must neither panic nor hang.
func Session(t testing.TB, addr string, session []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	c.Write(session) // fails once the server hangs up: fine
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open after %q", session)
	}
}

// ErrorWatch is a slog.Handler that drops records and remembers whether
// one was at level Error (a recovered panic, for instance).
type ErrorWatch struct{ seen atomic.Bool }

// Enabled implements slog.Handler.
func (w *ErrorWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

// Handle implements slog.Handler.
func (w *ErrorWatch) Handle(context.Context, slog.Record) error { w.seen.Store(true); return nil }

// WithAttrs implements slog.Handler.
func (w *ErrorWatch) WithAttrs([]slog.Attr) slog.Handler { return w }

// WithGroup implements slog.Handler.
func (w *ErrorWatch) WithGroup(string) slog.Handler { return w }

// Seen reports whether an error was logged.
func (w *ErrorWatch) Seen() bool { return w.seen.Load() }
