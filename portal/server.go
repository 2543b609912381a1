package portal

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// Store is what the portal needs from a backend: accounts and app
// passwords, the KV for sessions and the TOTP replay guard, and the audit
// log for "recent sign-ins" and admin actions.
type Store interface {
	store.Store
	store.KV
	store.AuditLog
}

// Authenticator decides a primary-password sign-in (authn.Verifier and
// authn.Guard implement it). The portal calls it with Protocol
// ProtocolPortal, so the brute-force limits of mail logins apply.
type Authenticator interface {
	Verify(ctx context.Context, a authn.Attempt) (authn.Decision, error)
}

// SecondFactorGuard decides a second-factor attempt within the
// brute-force limits: it reserves the attempt, runs check only if the
// limits allow, and records the outcome (authn.Guard implements it).
type SecondFactorGuard interface {
	SecondFactor(ctx context.Context, a authn.Attempt, check func(context.Context) (bool, error)) (authn.Result, error)
}

// ProtocolPortal is the Attempt.Protocol of a portal sign-in and the
// AuditRecord.Protocol of its records. No app password has this scope, so
// an app password never signs in to the portal.
const ProtocolPortal store.Scope = "portal"

// Defaults applied when the matching Server field is zero.
const (
	DefaultSessionTTL = 8 * time.Hour
	DefaultIssuer     = "passgate"
	// pendingTTL bounds the step between the password and the TOTP code
	// (or the end of a required enrolment).
	pendingTTL = 15 * time.Minute
	// maxForm bounds a request body.
	maxForm = 64 << 10
)

// Server is the portal. Set the fields before calling Handler; they must not
// change afterwards.
type Server struct {
	// Store is required.
	Store Store
	// Auth decides sign-ins with the primary password and records them in
	// the audit log; if it is also a SecondFactorGuard, it decides second
	// factors (TOTP and recovery codes) in the same limits and records
	// them too. authn.Guard with an Auditor does both, and should be the
	// Guard of the mail logins, so that every door counts in one set of
	// limits. If nil, or for what it does not do, the portal uses an
	// authn.Guard of its own over Verifier, with in-process counters,
	// default limits and the audit in Store.
	Auth Authenticator
	// Verifier decides sign-ins if Auth is nil, gives the argon2id
	// parameters of recovery codes, and is the account service's if
	// Accounts is nil. Required.
	Verifier *authn.Verifier
	// Accounts makes the account changes of the admin pages and of
	// self-service (app passwords, the primary password), audited with
	// the signed-in user as actor. If nil, a service over Store and
	// Verifier that audits to Store and Logger only (no audit stream).
	Accounts *account.Service
	// Key is the 32-byte key that seals TOTP secrets (AES-256-GCM) and the
	// short-lived download tokens. Required; losing it means every user
	// must enrol again.
	Key []byte
	// BaseURL is the portal's public URL, e.g. "https://mail.example.org".
	// Its origin is trusted for cross-origin checks; its host is the
	// default mail host. Cookies are Secure unless it is http:// on a
	// loopback host (the demo). Required.
	BaseURL string
	// Issuer names the service in authenticator apps. "" = "passgate".
	Issuer string
	// Mail is what mail clients are told to connect to.
	Mail MailSettings
	// SessionTTL is how long a sign-in lasts. 0 = DefaultSessionTTL.
	SessionTTL time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the client's address. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// ConnLimit bounds the connections that Listener admits, in total and
	// per address (a ConnLimiter that counts TrustedProxy addresses in the
	// total only, since a proxy carries many clients). If nil, Listener
	// limits nothing.
	ConnLimit ConnLimiter
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Logger receives one line per sign-in and admin action. If nil,
	// slog.Default().
	Logger *slog.Logger
	// OIDC, if set, offers the sign-in with the organisation's identity
	// provider (oidc.go).
	OIDC *OIDCConfig
	// Link, if set, lets users link their mailbox for the upstream login
	// with their own OAuth 2.0 tokens (link.go).
	Link *LinkConfig

	idp   *idpState    // the OIDC provider, once discovered
	flows *flowLimiter // pre-sessions started per address

	// password and factors are Auth, or the portal's own Guard, as
	// Handler chose them.
	password Authenticator
	factors  SecondFactorGuard
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// auth decides primary-password attempts (see Auth; set by Handler).
func (s *Server) auth() Authenticator { return s.password }

// secondFactors decides second-factor attempts (see Auth; set by Handler).
func (s *Server) secondFactors() SecondFactorGuard { return s.factors }

// guards chooses, once, in Handler, who decides passwords and second
// factors: Auth, and the portal's own Guard for what Auth does not do.
func (s *Server) guards() {
	var own *authn.Guard
	ownGuard := func() *authn.Guard {
		if own == nil {
			own = &authn.Guard{Verifier: s.Verifier, Counters: &memcount.Counters{Now: s.Now},
				Audit: &authn.Auditor{Store: s.Store, Logger: s.Logger}, Now: s.Now, Logger: s.Logger}
		}
		return own
	}
	s.password = s.Auth
	if s.password == nil {
		s.password = ownGuard()
	}
	if g, ok := s.Auth.(SecondFactorGuard); ok {
		s.factors = g
	} else {
		s.factors = ownGuard()
	}
}

func (s *Server) accounts() *account.Service {
	if s.Accounts != nil {
		return s.Accounts
	}
	return &account.Service{Store: s.Store, Verifier: s.Verifier, Logger: s.logger(), Now: s.Now}
}

func (s *Server) issuer() string {
	if s.Issuer != "" {
		return s.Issuer
	}
	return DefaultIssuer
}

func (s *Server) sessionTTL() time.Duration {
	if s.SessionTTL > 0 {
		return s.SessionTTL
	}
	return DefaultSessionTTL
}

// baseURL returns BaseURL parsed; the zero URL if it does not parse.
func (s *Server) baseURL() *url.URL {
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// secureCookies reports whether cookies get the Secure attribute: always,
// except for an http:// BaseURL on a loopback host.
func (s *Server) secureCookies() bool {
	u := s.baseURL()
	if u.Scheme != "http" {
		return true
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

func (s *Server) check() error {
	switch {
	case s.Store == nil:
		return errors.New("portal: Server.Store is nil")
	case s.Verifier == nil:
		return errors.New("portal: Server.Verifier is nil")
	case len(s.Key) != 32:
		return errors.New("portal: Server.Key must be 32 bytes")
	case s.baseURL().Host == "":
		return errors.New("portal: Server.BaseURL must be an absolute http or https URL")
	}
	return nil
}

// Handler returns the portal's HTTP handler. It panics if a required field
// is missing (a programming error, found at start).
func (s *Server) Handler() http.Handler {
	if err := s.check(); err != nil {
		panic(err)
	}
	s.guards()
	s.idp, s.flows = &idpState{}, &flowLimiter{}
	mux := http.NewServeMux()
	s.routes(mux)

	cop := http.NewCrossOriginProtection()
	u := s.baseURL()
	if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		panic(err)
	}
	// Outlook posts its Autodiscover request from no web page; it changes
	// nothing and returns no secret.
	cop.AddInsecureBypassPattern("POST /autodiscover/autodiscover.xml")
	cop.AddInsecureBypassPattern("POST /Autodiscover/Autodiscover.xml")
	cop.SetDenyHandler(http.HandlerFunc(s.crossOriginRefused))
	h := securityHeaders(cop.Handler(limitBody(mux)))
	if u.Scheme == "https" {
		h = hsts(h)
	}
	return s.recoverer(h)
}

// limitBody caps every request body at maxForm, so that no form post can
// make the portal read (or net/http buffer) more than a page's worth.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		h.ServeHTTP(w, r)
	})
}

// HTTPServer returns an http.Server for Handler with timeouts that a
// public listener needs (slow clients cannot hold connections open) and
// its error log on Logger. tlsConfig, if not nil, is for ServeTLS. Serve
// it on Listener(ln), which applies ConnLimit.
func (s *Server) HTTPServer(tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
	}
}

// hsts tells browsers to use https only (RFC 6797).
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// routes registers every page. Patterns are net/http ServeMux patterns.
func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("GET /signin/code", s.need(stageTOTP, s.codePage))
	mux.HandleFunc("POST /signin/code", s.need(stageTOTP, s.code))
	mux.HandleFunc("POST /signout", s.signout)

	mux.HandleFunc("GET /mfa/setup", s.need(stageEnrol, s.enrolPage))
	mux.HandleFunc("GET /mfa/qr.png", s.need(stageEnrol, s.enrolQR))
	mux.HandleFunc("POST /mfa/setup", s.need(stageEnrol, s.enrol))

	mux.HandleFunc("GET /app-passwords", s.need(stageFull, s.appPasswords))
	mux.HandleFunc("POST /app-passwords", s.need(stageFull, s.createAppPassword))
	mux.HandleFunc("POST /app-passwords/profile", s.need(stageFull, s.downloadProfile))
	mux.HandleFunc("GET /app-passwords/{id}/revoke", s.need(stageFull, s.revokePage))
	mux.HandleFunc("POST /app-passwords/{id}/revoke", s.need(stageFull, s.revoke))
	mux.HandleFunc("GET /app-passwords/{id}/devices", s.need(stageFull, s.devicesPage))
	mux.HandleFunc("POST /app-passwords/{id}/devices/accept", s.need(stageFull, s.acceptDevice))
	mux.HandleFunc("POST /app-passwords/{id}/policy", s.need(stageFull, s.setDevicePolicy))

	mux.HandleFunc("GET /account", s.need(stageFull, s.accountPage))
	mux.HandleFunc("POST /account/password", s.need(stageFull, s.changePassword))
	mux.HandleFunc("POST /account/language", s.need(stageFull, s.setLanguage))

	mux.HandleFunc("GET /admin", s.needAdmin(s.adminUsers))
	mux.HandleFunc("GET /admin/users/{user...}", s.needAdmin(s.adminUser))
	mux.HandleFunc("POST /admin/actions", s.needAdmin(s.adminAction))
	s.oidcRoutes(mux)

	for _, p := range []string{"GET /.well-known/autoconfig/mail/config-v1.1.xml", "GET /mail/config-v1.1.xml"} {
		mux.HandleFunc(p, s.autoconfig)
	}
	for _, p := range []string{"POST /autodiscover/autodiscover.xml", "POST /Autodiscover/Autodiscover.xml"} {
		mux.HandleFunc(p, s.autodiscover)
	}
}

// cspPolicy allows nothing but this origin's own files: no inline script or
// style, no plugins, no framing, no <base>.
const cspPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders sets the headers every response carries. Every response
// but the static files is personal, so it is not stored by any cache.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", cspPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a 500 page and a log line that
// carries no request data.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				msg := "non-runtime panic" // its value may hold request data
				if re, ok := v.(runtime.Error); ok {
					msg = re.Error()
				}
				s.logger().Error("portal: handler panicked", "path", r.URL.Path, "panic", msg)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// remoteAddr is the client's address: the TCP peer, or, when the peer is a
// trusted proxy, the last address in X-Forwarded-For that is not one.
func (s *Server) remoteAddr(r *http.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip, _ := netip.ParseAddr(host)
		ap = netip.AddrPortFrom(ip, 0)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !s.TrustedProxy(ap.Addr()) {
		return ap
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ap // garbage: stop believing the chain
		}
		ip = ip.Unmap()
		if !s.TrustedProxy(ip) {
			return netip.AddrPortFrom(ip, 0)
		}
	}
	return ap
}

// TrustedProxy reports whether ip is one of TrustedProxies.
func (s *Server) TrustedProxy(ip netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
