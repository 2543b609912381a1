// Package pop3 is passgate's POP3 front end (RFC 1939, RFC 2449 CAPA,
// RFC 2595 STLS, RFC 5034 AUTH, RFC 3206 response codes): the
// AUTHORIZATION state, then a hand-off to the upstream splice.
//
// A Server greets the client and answers CAPA, STLS, USER and PASS, AUTH
// PLAIN / LOGIN (with initial responses and "*" cancel) and QUIT; APOP is
// refused (the greeting carries no timestamp: passgate never holds a
// password APOP could digest). The credentials go through
// proxy.LoginFlow; on success the upstream's +OK is passed to the client
// and from then on bytes are copied both ways by proxy.Splice:
//
//	srv := &pop3.Server{Auth: guard, Upstream: cfg.POP3(), TLSConfig: tlsConf}
//	go srv.ServeTLS(ln995)
//	go srv.Serve(ln110) // STLS
//	...
//	srv.Shutdown(ctx)
package pop3

// Implementation notes (invariants every change must keep):
//
//   - No upstream dial before the Authenticator said OK: proxy.LoginFlow
//     is called from one place, conn.login.
//   - Never log a secret: the secret lives in an authn.Attempt and, only if
//     Upstream.NeedsClientSecret, in upstream.Login; neither is logged.
//   - Every pre-auth read has a deadline and a size limit: readCommand arms
//     one deadline (Limits.PreauthTimeout) per command, which its SASL
//     responses share; lines are read with ReadSlice into a buffer of
//     Limits.MaxLine bytes.
//   - One owner per connection: the conn goroutine owns the client and its
//     reader until proxy.Splice takes both; bytes pipelined after the login
//     go to the upstream in Leg.Buffered.
//   - STLS never lets plaintext bytes cross into TLS: any byte buffered
//     after the STLS line refuses the command and closes the connection.

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

var _ proxy.Upstream = (*upstream.POP3)(nil)

// DefaultHostname is the greeting text when Server.Hostname is empty.
const DefaultHostname = "passgate"

// Server is a POP3 front end. Set the fields before the first Serve; they
// must not change afterwards.
type Server struct {
	Auth     proxy.Authenticator // required
	Upstream proxy.Upstream      // required
	// Sessions registers each relayed session, so that revocation ends
	// it. nil: sessions are not registered (tests).
	Sessions proxy.Sessions
	// Limits bound what a client costs before it logs in, as for IMAP:
	// each command with its SASL responses must arrive within
	// PreauthTimeout; past MaxPreauthCommands the client gets "-ERR Too
	// many commands before login", past MaxFailedLogins the connection is
	// closed after the failure's reply; lines are at most MaxLine bytes.
	Limits proxy.Limits
	// TLSConfig is used for STLS (Serve) and implicit TLS (ServeTLS). Nil:
	// no STLS, and ServeTLS fails.
	TLSConfig *tls.Config
	// AllowCleartext allows USER, PASS and AUTH without TLS.
	AllowCleartext bool
	// MFAMessage is the text after "-ERR [AUTH] " when a primary password
	// is refused because the account uses MFA (see proxy.MFAText). "" =
	// proxy.MFAText("", "").
	MFAMessage string
	// DeviceMessage is the text after "-ERR [AUTH] " when a login is
	// refused because its app password is bound to another device
	// (authn.DeviceRefused). "" = proxy.DeviceRefusedText("").
	DeviceMessage string
	// IdleTimeout is passed to proxy.Splice.
	IdleTimeout time.Duration
	// Logger receives one Info line per login outcome. nil = slog.Default().
	Logger *slog.Logger
	// Hostname is the greeting text. "" = "passgate".
	Hostname string

	// Reloadable's SetLimits and SetMFAMessage replace Limits and
	// MFAMessage while the server runs (a configuration reload).
	proxy.Reloadable

	nameOnce sync.Once
	hellos   proxy.LazyHelloWatch // TLS fingerprints of TLSConfig's handshakes
	life     proxy.Lifecycle
}

func (s *Server) limits() proxy.Limits { return s.LimitsOr(s.Limits).WithDefaults() }

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) mfaMessage() string {
	if m := s.MFAMessageOr(s.MFAMessage); m != "" {
		return proxy.OneLine(m)
	}
	return proxy.MFAText("", "")
}

// helloWatch serves TLSConfig and records each client's TLS fingerprint;
// nil without TLSConfig.
func (s *Server) helloWatch() *proxy.HelloWatch { return s.hellos.Get(s.TLSConfig) }

func (s *Server) deviceMessage() string {
	if s.DeviceMessage != "" {
		return proxy.OneLine(s.DeviceMessage)
	}
	return proxy.DeviceRefusedText("")
}

func (s *Server) hostname() string {
	if s.Hostname != "" {
		return proxy.OneLine(s.Hostname)
	}
	return DefaultHostname
}

// Serve accepts plain TCP connections on ln, offering STLS when TLSConfig
// is set. It fails at once if no client could ever log in (no TLSConfig
// and AllowCleartext false). After Shutdown or Close it returns
// proxy.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if err := proxy.CheckServe("pop3", s.Auth, s.Upstream, s.TLSConfig, s.AllowCleartext, false); err != nil {
		return err
	}
	return s.serve(ln, false)
}

// ServeTLS accepts implicit-TLS connections on ln (port 995).
func (s *Server) ServeTLS(ln net.Listener) error {
	if err := proxy.CheckServe("pop3", s.Auth, s.Upstream, s.TLSConfig, s.AllowCleartext, true); err != nil {
		return err
	}
	return s.serve(tls.NewListener(ln, s.helloWatch().Config()), true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	s.nameOnce.Do(func() { s.life.Name = "pop3" }) // Serve and ServeTLS may start together
	return s.life.Serve(ln, s.logger(), func(nc net.Conn) (proxy.Handle, func(ctx context.Context)) {
		c := newConn(s, nc, implicitTLS)
		return c, c.serve
	})
}

// Shutdown stops accepting, tells clients before login "-ERR [SYS/TEMP]
// Server shutting down", and waits for relayed sessions to end until ctx
// is done; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error { return s.life.Close() }
