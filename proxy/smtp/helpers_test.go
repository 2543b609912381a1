package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

func TestMain(m *testing.M) {
	testleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(proxy.PollerFunction))
}

// ioTimeout bounds every test read so a broken server fails the test
// instead of hanging it; it is not a performance threshold.
const ioTimeout = 30 * time.Second

// Accounts known to fakeAuth, and the upstream's credentials.
const (
	appUser      = "alice@example.org" // app password login
	appSecret    = "abcd-efgh-ijkl-mnop"
	appID        = "ap-1"
	aliasAddr    = "Sales@Example.org" // alias of appUser
	mfaUser      = "mfa@example.org"   // primary password of an MFA account
	mfaSecret    = "primary-pw-7f3a"
	scopeUser    = "imaponly@example.org" // app password without the smtp scope
	scopeSecret  = "scope-secret-9q8w"
	brokenUser   = "broken@example.org" // Verify fails
	panicUser    = "panicky@example.org"
	deviceUser   = "device@example.org" // right secret, another device, policy block
	masterUser   = "proxy"
	masterSecret = "master-secret-xyz"
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
	case mfaUser:
		if a.Secret == mfaSecret {
			return authn.Decision{Result: authn.PrimaryRefusedMFA, Username: user}, nil
		}
	case deviceUser:
		if a.Secret == appSecret {
			return authn.Decision{Result: authn.DeviceRefused, Username: user, AppPasswordID: appID}, nil
		}
	case scopeUser:
		if a.Secret == scopeSecret {
			return authn.Decision{Result: authn.ScopeDenied, Username: user, AppPasswordID: "ap-2"}, nil
		}
	case appUser:
		if a.Secret == appSecret {
			return authn.Decision{Result: authn.OK, Username: user, AppPasswordID: appID}, nil
		}
	default:
		return authn.Decision{Result: authn.UnknownUser}, nil
	}
	return authn.Decision{Result: authn.BadSecret, Username: user}, nil
}

func (f *fakeAuth) lastAttempt(t *testing.T) authn.Attempt {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.attempts) == 0 {
		t.Fatal("no Verify call")
	}
	return f.attempts[len(f.attempts)-1]
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer = testlog.Buffer

// testCert returns a server config with the test binary's self-signed
// certificate (127.0.0.1, localhost) and the pool that trusts it.
func testCert(testing.TB) (*tls.Config, *x509.CertPool) {
	return testcert.ServerConfig(), testcert.ClientConfig("").RootCAs
}

// env is passgate in front of a sink.
type env struct {
	pg   *Server
	addr string // submission (Serve)
	sink *sink
	auth *fakeAuth
	logs *syncBuffer
}

// startPassgate serves srv on 127.0.0.1:0 (ServeTLS when implicit) and
// closes it at the end of the test.
func startPassgate(t testing.TB, srv *Server, implicit bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if implicit {
			done <- srv.ServeTLS(ln)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve ended by Close returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// newEnv starts a sink (configured by sinkCfg) and passgate in front of it
// in master mode with cleartext AUTH allowed; pgCfg adjusts passgate before
// it starts.
func newEnv(t testing.TB, sinkCfg func(*sink), pgCfg func(*Server)) *env {
	t.Helper()
	e := &env{sink: startSink(t, sinkCfg), auth: &fakeAuth{}, logs: &syncBuffer{}}
	e.pg = &Server{
		Auth: e.auth,
		Upstream: &upstream.SMTP{
			Address:      e.sink.addr,
			Mode:         upstream.ModeMaster,
			MasterUser:   masterUser,
			MasterSecret: masterSecret,
		},
		AllowCleartext: true,
		Hostname:       "passgate.test",
		ReadTimeout:    ioTimeout,
		Logger:         slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	if pgCfg != nil {
		pgCfg(e.pg)
	}
	e.addr = startPassgate(t, e.pg, false)
	return e
}

// upstreamOf is the upstream client of s, for a test to adjust.
func upstreamOf(s *Server) *upstream.SMTP { return s.Upstream.(*upstream.SMTP) }

// dial connects a go-smtp client to addr and says EHLO.
func dial(t testing.TB, addr string) *gosmtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := gosmtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = ioTimeout, ioTimeout
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login dials addr and logs in as appUser with PLAIN.
func login(t testing.TB, addr string) *gosmtp.Client {
	t.Helper()
	c := dial(t, addr)
	if err := c.Auth(sasl.NewPlainClient("", appUser, appSecret)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	return c
}

// send sends body from appUser to rcpts on an authenticated client.
func send(c *gosmtp.Client, body io.Reader, rcpts ...string) error {
	if err := c.Mail(appUser, nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return w.Close()
}

// wantReply checks that err is the SMTP reply code enhanced text.
func wantReply(t testing.TB, err error, code int, ec gosmtp.EnhancedCode, text string) {
	t.Helper()
	se, ok := asSMTPError(err)
	if !ok {
		t.Fatalf("got %v, want reply %d %v %q", err, code, ec, text)
	}
	if se.Code != code || se.EnhancedCode != ec || (text != "" && se.Message != text) {
		t.Fatalf("got reply %d %v %q, want %d %v %q", se.Code, se.EnhancedCode, se.Message, code, ec, text)
	}
}

// textConn speaks SMTP as text, for transcripts.
type textConn struct {
	t  testing.TB
	c  net.Conn
	tp *textproto.Conn
}

func dialText(t testing.TB, addr string) *textConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := &textConn{t: t, c: c, tp: textproto.NewConn(c)}
	tc.expect(220)
	return tc
}

// transact sends line and returns the reply (code, and text lines joined by
// "\n").
func (tc *textConn) transact(line string) (int, string) {
	tc.t.Helper()
	tc.c.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.tp.PrintfLine("%s", line); err != nil {
		tc.t.Fatalf("write %q: %v", line, err)
	}
	return tc.read()
}

func (tc *textConn) read() (int, string) {
	tc.t.Helper()
	tc.c.SetDeadline(time.Now().Add(ioTimeout))
	code, msg, err := tc.tp.ReadResponse(0)
	if err != nil {
		tc.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

func (tc *textConn) expect(code int) string {
	tc.t.Helper()
	got, msg := tc.read()
	if got != code {
		tc.t.Fatalf("got %d %s, want %d", got, msg, code)
	}
	return msg
}

// transactWant sends line and checks the reply's code and text.
func (tc *textConn) transactWant(line string, code int, text string) string {
	tc.t.Helper()
	got, msg := tc.transact(line)
	if got != code || (text != "" && msg != text) {
		tc.t.Fatalf("%s: got %d %q, want %d %q", line, got, msg, code, text)
	}
	return msg
}

// expectClosed checks that the server closed the connection.
func (tc *textConn) expectClosed() {
	tc.t.Helper()
	tc.c.SetDeadline(time.Now().Add(ioTimeout))
	if line, err := tc.tp.ReadLine(); err == nil {
		tc.t.Fatalf("connection open, read %q", line)
	} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		tc.t.Fatal("connection still open")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func b64(s string) string { return encodeB64([]byte(s)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
