// Package imap is passgate's IMAP front end (RFC 3501, RFC 9051): the
// pre-authentication phase, then a hand-off to the upstream splice.
//
// A Server greets the client, answers CAPABILITY, NOOP, LOGOUT, ID and
// STARTTLS, and takes LOGIN or AUTHENTICATE PLAIN / LOGIN. Before login it
// announces its own capabilities and the upstream's pre-login ones, which
// the first Serve learns from an Upstream that offers Capabilities (as
// upstream.IMAP does), so that clients that read the list only once see
// IDLE and the rest. The credentials go
// to the Authenticator; on success the Upstream logs in to the real server as
// the user, the upstream's tagged OK is re-tagged for the client, and from
// then on bytes are copied both ways by proxy.Splice:
//
//	srv := &imap.Server{Auth: verifier, Upstream: up, TLSConfig: cfg}
//	go srv.ServeTLS(ln993)
//	go srv.Serve(ln143) // STARTTLS
//	...
//	srv.Shutdown(ctx)
package imap

// Implementation notes (invariants every change must keep):
//
//   - No upstream dial before the Authenticator said OK: proxy.LoginFlow
//     is called from one place, conn.login.
//   - Never log a secret: the secret lives in an authn.Attempt and in
//     upstream.Login (only if Upstream.NeedsClientSecret); neither is
//     logged, formatted into an error, or kept after the login. Panic values
//     are logged only when they are runtime errors (which carry no data).
//   - Every pre-auth read has a deadline and a size limit: readCommand arms
//     one deadline (Limits.PreauthTimeout) per command, which its literals
//     and SASL responses share, so an idle client is closed after one
//     PreauthTimeout; lines are read with bufio.Reader.ReadSlice into a
//     buffer of Limits.MaxLine bytes, literals into a buffer of at most
//     Limits.MaxLiteral bytes. Nothing
//     sized by the client is allocated beyond these limits.
//   - One owner per connection: the conn goroutine owns the client net.Conn
//     and its bufio.Reader until proxy.Splice takes both legs; bytes the
//     client pipelined after its login are handed over in Leg.Buffered.
//   - STARTTLS never lets plaintext bytes cross into the TLS session: any
//     byte buffered after the STARTTLS line refuses the command (RFC 3501
//     §6.2.1, CVE-2021-33515 class) and a fresh reader is built on the TLS
//     connection.

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

// Upstream logs in to the real server as the user (upstream.IMAP implements
// it), as for every line-based front-end.
type Upstream = proxy.Upstream

var _ Upstream = (*upstream.IMAP)(nil)

// DefaultHostname is the greeting text when Server.Hostname is empty.
const DefaultHostname = "passgate"

// Server is an IMAP pre-auth front end. Set the fields before the first
// Serve; they must not change afterwards.
type Server struct {
	Auth     proxy.Authenticator // required
	Upstream Upstream            // required
	// Sessions registers each relayed session, so that revocation ends
	// it; its check after registering can still refuse the login. nil:
	// sessions are not registered (tests).
	Sessions proxy.Sessions
	// Limits bound what a client costs before it logs in: each command,
	// with its literals and SASL responses, must arrive within
	// PreauthTimeout of passgate starting to read it, which also bounds
	// each pre-auth write and the TLS handshake; past MaxPreauthCommands
	// the client gets "* BYE Too many commands before login", past
	// MaxFailedLogins "* BYE Too many failed logins", past Conns "* BYE
	// Too many connections"; lines and literals are read into buffers of
	// MaxLine and MaxLiteral bytes.
	Limits proxy.Limits
	// TLSConfig is used for STARTTLS (Serve) and implicit TLS (ServeTLS).
	// Nil: no STARTTLS, and ServeTLS fails.
	TLSConfig *tls.Config
	// AllowCleartext allows LOGIN and AUTHENTICATE on a connection without
	// TLS. If false, such a connection advertises LOGINDISABLED.
	AllowCleartext bool
	// MFAMessage is the text after "NO [ALERT] " when a primary password is
	// refused because the account uses MFA (see proxy.MFAText). "" =
	// proxy.MFAText("", "").
	MFAMessage string
	// RelinkMessage is the text after "NO [ALERT] " when the user must
	// link the mailbox again in the portal (upstream.RelinkError). "" =
	// proxy.RelinkText("").
	RelinkMessage string
	// DeviceMessage is the text after "NO [ALERT] " when a login is
	// refused because its app password is bound to another device
	// (authn.DeviceRefused). "" = proxy.DeviceRefusedText("").
	DeviceMessage string
	// IdleTimeout is passed to proxy.Splice (0 means whatever Splice does
	// with 0).
	IdleTimeout time.Duration
	// Logger receives one Info line per login outcome. nil = slog.Default().
	Logger *slog.Logger
	// Hostname is the greeting text. "" = "passgate".
	Hostname string
	// Metrics, if not nil, counts the bytes of relayed sessions.
	Metrics proxy.RelayMetrics
	// Reloadable's SetLimits and SetMFAMessage replace Limits and
	// MFAMessage while the server runs (a configuration reload).
	proxy.Reloadable

	capsOnce sync.Once
	// upstreamCaps is announced before login besides passgate's own: set
	// by capsOnce at the first Serve, replaced by RefreshCapabilities.
	upstreamCaps atomic.Pointer[[]string]

	life proxy.Lifecycle

	hellos proxy.LazyHelloWatch // TLS fingerprints of TLSConfig's handshakes
}

// limits is Limits, or the last SetLimits, with the defaults applied.
func (s *Server) limits() proxy.Limits { return s.LimitsOr(s.Limits).WithDefaults() }

func (s *Server) mfaMessage() string {
	if m := s.MFAMessageOr(s.MFAMessage); m != "" {
		return proxy.OneLine(m)
	}
	return proxy.MFAText("", "")
}

func (s *Server) deviceMessage() string {
	if s.DeviceMessage != "" {
		return proxy.OneLine(s.DeviceMessage)
	}
	return proxy.DeviceRefusedText("")
}

// helloWatch serves TLSConfig and records each client's TLS fingerprint;
// nil without TLSConfig.
func (s *Server) helloWatch() *proxy.HelloWatch { return s.hellos.Get(s.TLSConfig) }

func (s *Server) relinkMessage() string {
	if s.RelinkMessage != "" {
		return proxy.OneLine(s.RelinkMessage)
	}
	return proxy.RelinkText("")
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) hostname() string {
	if s.Hostname != "" {
		return proxy.OneLine(s.Hostname)
	}
	return DefaultHostname
}

// Serve accepts plain TCP connections on ln, offering STARTTLS when
// TLSConfig is set. The first Serve or ServeTLS probes the upstream's
// pre-login capabilities before accepting (for at most the upstream's own
// timeouts). It fails at once if no client could ever log in (no TLSConfig
// and AllowCleartext false). It always returns a non-nil error; after
// Shutdown or Close, proxy.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if err := proxy.CheckServe("imap", s.Auth, s.Upstream, s.TLSConfig, s.AllowCleartext, false); err != nil {
		return err
	}
	return s.serve(ln, false)
}

// ServeTLS accepts implicit-TLS connections on ln (port 993) using
// TLSConfig. It always returns a non-nil error; after Shutdown or Close,
// proxy.ErrServerClosed.
func (s *Server) ServeTLS(ln net.Listener) error {
	if err := proxy.CheckServe("imap", s.Auth, s.Upstream, s.TLSConfig, s.AllowCleartext, true); err != nil {
		return err
	}
	return s.serve(tls.NewListener(ln, s.helloWatch().Config()), true)
}

// serve runs the accept loop; implicitTLS says every conn is a *tls.Conn.
// The first call learns the upstream's pre-login capabilities; concurrent
// ones wait for it.
func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	s.capsOnce.Do(func() {
		s.life.Name = "imap"
		s.learnCapabilities()
	})
	return s.life.Serve(ln, s.logger(), func(nc net.Conn) (proxy.Handle, func(context.Context)) {
		c := newConn(s, nc, implicitTLS)
		return c, c.serve
	})
}

// Shutdown stops accepting, tells clients still in the pre-auth phase
// "* BYE Server shutting down", and waits for relayed sessions to end until
// ctx is done; then it says the same BYE to the relayed clients for which
// that is possible (between two client commands, see upstreamConn and
// conn.ShutdownExpired), closes what is left (relayed sessions included)
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

// Close stops accepting and closes every connection at once, relayed
// sessions included. It does not wait for the connection goroutines.
func (s *Server) Close() error { return s.life.Close() }
