package smtp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// backend makes a session per go-smtp connection (and a new one after
// STARTTLS).
type backend struct{ s *Server }

func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	nc := c.Conn()
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{
		srv:    b.s,
		conn:   c,
		nc:     nc,
		cc:     clientConnOf(nc),
		remote: proxy.RemoteAddrPort(nc.RemoteAddr()),
		ctx:    ctx,
		cancel: cancel,
	}
	if ss.cc != nil {
		ss.id = ss.cc.id
		ss.cc.setReplyTo(nc) // after STARTTLS: the TLS connection
	} else {
		ss.id = proxy.NewSessionID()
	}
	return ss, nil
}

// session is one client session. go-smtp calls its methods from the
// connection's goroutine (Data from another one for BDAT, still one at a
// time); Logout may come from any goroutine.
type session struct {
	srv    *Server
	conn   *gosmtp.Conn
	nc     net.Conn    // the client connection as go-smtp uses it (TLS or not)
	cc     *clientConn // the accepted connection under it
	id     string      // the connection's session id
	remote netip.AddrPort
	ctx    context.Context // cancelled by Logout and by the registry's end
	cancel context.CancelFunc

	auth atomic.Pointer[authState] // set by a successful AUTH

	mu     sync.Mutex         // guards the fields below and the use of up
	up     *upstream.SMTPConn // nil until AUTH, and after the upstream failed
	upStop func() bool        // unties up from ctx
	upTx   bool               // a MAIL was accepted upstream, no final reply yet
	rcpts  int                // recipients accepted in this transaction
}

var _ gosmtp.AuthSession = (*session)(nil)

// authState is who the session is logged in as.
type authState struct {
	decision authn.Decision
	secret   string // only if Upstream.NeedsClientSecret: to log in again upstream
	remove   func()
}

// log is the session's logger: every line carries the session id.
func (ss *session) log() *slog.Logger {
	return ss.srv.logger().With("session", ss.id, "remote", ss.remote.String())
}

// login is how the session logs in upstream.
func (ss *session) login(a *authState) upstream.Login {
	return upstream.Login{Username: a.decision.Username, Password: a.secret, ClientIP: ss.remote, SessionID: ss.id}
}

// register records the authenticated session in Sessions; ending it closes
// both connections without blocking. Sessions checks the credential again
// after recording it, so that a revocation during the upstream login is
// not missed: its error refuses the login.
func (ss *session) register(d authn.Decision) (remove func(), err error) {
	if ss.srv.Sessions == nil {
		return func() {}, nil
	}
	end := func() {
		ss.cancel() // aborts the upstream connection
		if ss.cc != nil {
			ss.cc.Close()
		} else {
			ss.nc.Close()
		}
	}
	return ss.srv.Sessions.Add(ss.ctx, sessions.Session{
		ID:       ss.id,
		Protocol: store.ScopeSMTP,
		Remote:   ss.remote,
		Started:  time.Now(),
		Login:    d,
	}, end)
}

// setUpstream makes up the session's upstream connection; cancelling the
// session's context aborts it.
func (ss *session) setUpstream(up *upstream.SMTPConn) {
	ss.upStop = context.AfterFunc(ss.ctx, up.Abort)
	ss.up = up
	ss.upTx = false
}

// dropUpstream aborts the upstream connection after a failure; the next
// MAIL connects again. ss.mu must be held.
func (ss *session) dropUpstream() {
	if ss.up != nil {
		ss.upStop()
		ss.up.Abort()
	}
	ss.up, ss.upTx = nil, false
}

// Reset aborts the transaction: RSET upstream when one is open there.
func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.rcpts = 0
	if ss.up == nil || !ss.upTx {
		return
	}
	ss.upTx = false
	if err := ss.up.Client.Reset(); err != nil {
		ss.log().Warn("smtp upstream rset failed", "err", err)
		ss.dropUpstream()
	}
}

// quitTimeout bounds the QUIT sent upstream when the client leaves.
const quitTimeout = 2 * time.Second

// Logout ends the session: QUIT upstream if the connection is idle, else
// abort it; unregister.
func (ss *session) Logout() error {
	if ss.mu.TryLock() {
		if ss.up != nil {
			ss.up.Quit(quitTimeout)
			ss.up = nil
		}
		ss.mu.Unlock()
	}
	ss.cancel()
	if a := ss.auth.Load(); a != nil {
		a.remove()
	}
	return nil
}
