// Package sieve is passgate's ManageSieve front end (RFC 5804): the
// non-authenticated state (CAPABILITY, STARTTLS, AUTHENTICATE PLAIN /
// LOGIN, NOOP, LOGOUT), then a hand-off to the upstream splice.
//
// The capability greeting repeats the upstream's Sieve extensions (learnt
// once, at the first Serve, from an Upstream with Capabilities) so that
// clients, which read them before login only, see them. Logins go through
// proxy.LoginFlow, as POP3's do.
//
// Implementation notes: no upstream dial before an OK decision (one call
// of LoginFlow.LogIn, in conn.login); never log a secret; every read
// before login has a deadline (one per command, its literals and SASL
// responses included) and a size limit (Limits.MaxLine per line,
// Limits.MaxLiteral per literal); STARTTLS refuses pipelined bytes.
package sieve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

var _ proxy.Upstream = (*upstream.Sieve)(nil)

// Server is a ManageSieve front end. Set the fields before the first
// Serve.
type Server struct {
	Auth     proxy.Authenticator // required
	Upstream proxy.Upstream      // required
	Sessions proxy.Sessions      // nil: sessions are not registered
	// Limits as for IMAP: PreauthTimeout per command, MaxFailedLogins,
	// MaxPreauthCommands, MaxLine, MaxLiteral.
	Limits proxy.Limits
	// TLSConfig is used for STARTTLS. Nil: no STARTTLS.
	TLSConfig *tls.Config
	// AllowCleartext allows AUTHENTICATE without TLS.
	AllowCleartext bool
	// MFAMessage is the text of the NO refusing a primary password of an
	// MFA account (see proxy.MFAText). "" = proxy.MFAText("", "").
	MFAMessage string
	// DeviceMessage is the text of the NO refusing a login whose app
	// password is bound to another device (authn.DeviceRefused). "" =
	// proxy.DeviceRefusedText("").
	DeviceMessage string
	IdleTimeout   time.Duration
	Logger        *slog.Logger // nil = slog.Default()

	// Reloadable's SetLimits and SetMFAMessage replace Limits and
	// MFAMessage while the server runs (a configuration reload).
	proxy.Reloadable

	hellos       proxy.LazyHelloWatch // TLS fingerprints of STARTTLS handshakes
	capsOnce     sync.Once
	upstreamCaps atomic.Pointer[[]string] // capability lines repeated from the upstream
	life         proxy.Lifecycle
}

// capabilityProber is implemented by upstream.Sieve.
type capabilityProber interface {
	Capabilities(ctx context.Context) ([]string, error)
}

// defaultCapabilities stand for the upstream's when they cannot be learnt.
var defaultCapabilities = []string{`"SIEVE" "fileinto reject envelope vacation"`}

func (s *Server) limits() proxy.Limits { return s.LimitsOr(s.Limits).WithDefaults() }

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// helloWatch serves TLSConfig and records each client's TLS fingerprint;
// nil without TLSConfig.
func (s *Server) helloWatch() *proxy.HelloWatch { return s.hellos.Get(s.TLSConfig) }

func (s *Server) deviceMessage() string {
	if s.DeviceMessage != "" {
		return s.DeviceMessage
	}
	return proxy.DeviceRefusedText("")
}

func (s *Server) mfaMessage() string {
	if m := s.MFAMessageOr(s.MFAMessage); m != "" {
		return m
	}
	return proxy.MFAText("", "")
}

// learnCapabilities keeps the upstream's capability lines but those
// passgate answers for itself, or defaultCapabilities when the upstream
// cannot be probed. Serve runs it once, before the first connection.
func (s *Server) learnCapabilities() {
	caps, ok := s.probeCapabilities(s.life.Context()) // Close cancels it
	if !ok {
		caps = defaultCapabilities
	}
	s.upstreamCaps.Store(&caps)
}

// RefreshCapabilities probes the upstream again for the connections that
// start afterwards (a configuration reload calls it: the upstream may have
// been upgraded or reconfigured). A failed probe keeps the lines so far.
func (s *Server) RefreshCapabilities(ctx context.Context) {
	if caps, ok := s.probeCapabilities(ctx); ok {
		s.upstreamCaps.Store(&caps)
	}
}

// capabilities are the upstream's lines the capability response repeats.
func (s *Server) capabilities() []string {
	if p := s.upstreamCaps.Load(); p != nil {
		return *p
	}
	return defaultCapabilities
}

// probeCapabilities asks the Upstream for its capabilities and returns
// those passgate repeats; ok is false when it cannot be probed or the
// probe failed (logged).
func (s *Server) probeCapabilities(ctx context.Context) (keep []string, ok bool) {
	p, ok := s.Upstream.(capabilityProber)
	if !ok {
		return nil, false
	}
	caps, err := p.Capabilities(ctx)
	if err != nil {
		s.logger().Warn("sieve upstream capability probe failed; announcing defaults or the last lines learnt", "err", err)
		return nil, false
	}
	keep = []string{}
	for _, c := range caps {
		name, _, _ := strings.Cut(strings.ToUpper(c), " ")
		switch name {
		case `"IMPLEMENTATION"`, `"SASL"`, `"STARTTLS"`, `"VERSION"`, `"OWNER"`, `"XCLIENT"`:
			continue
		}
		if !strings.ContainsAny(c, "\r\n") {
			keep = append(keep, c)
		}
	}
	return keep, true
}

// Serve accepts plain TCP connections on ln (port 4190), offering
// STARTTLS when TLSConfig is set.
func (s *Server) Serve(ln net.Listener) error {
	if err := proxy.CheckServe("sieve", s.Auth, s.Upstream, s.TLSConfig, s.AllowCleartext, false); err != nil {
		return err
	}
	// Several listeners may start together: name the lifecycle once.
	s.capsOnce.Do(func() {
		s.life.Name = "sieve"
		s.learnCapabilities()
	})
	return s.life.Serve(ln, s.logger(), func(nc net.Conn) (proxy.Handle, func(context.Context)) {
		c := newConn(s, nc)
		return c, c.serve
	})
}

// ServeTLS is not part of ManageSieve (RFC 5804 has no implicit-TLS port).
func (s *Server) ServeTLS(net.Listener) error {
	return errors.New("sieve: ManageSieve has no implicit TLS port; use Serve with STARTTLS")
}

// Shutdown stops accepting, ends connections before login and waits for
// relayed sessions until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

// Close closes everything at once.
func (s *Server) Close() error { return s.life.Close() }
