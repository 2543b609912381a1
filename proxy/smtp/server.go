package smtp

import (
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
	"syscall"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

// Upstream logs in to the submission server as the user (upstream.SMTP
// implements it). On success the caller owns the returned connection. The
// client's secret goes into upstream.Login only if NeedsClientSecret says
// so. An Upstream that has Probe is asked at start what to advertise; one
// that has Validate is checked then.
type Upstream interface {
	Login(ctx context.Context, l upstream.Login) (*upstream.SMTPConn, error)
	NeedsClientSecret() bool
}

var _ Upstream = (*upstream.SMTP)(nil)

// DefaultMaxMessageBytes is the SIZE advertised when neither the upstream
// nor MaxMessageBytes gives one.
const DefaultMaxMessageBytes = 50 << 20

// Server is an SMTP submission server that relays to one Upstream. Set the
// fields before the first Serve; a Server must not be copied after.
type Server struct {
	// Auth decides logins (protocol smtp). Required.
	Auth proxy.Authenticator
	// Upstream is where messages go. Required.
	Upstream Upstream
	// Senders lists an account's aliases for the sender check. If nil, the
	// username is the only address.
	Senders Senders
	// CheckSender refuses a MAIL FROM that is not the username or an alias
	// (553 5.7.1), and the null sender.
	CheckSender bool
	// DefaultDomain, if set, adds the address username@DefaultDomain to an
	// account whose name has no "@" for the sender check. If empty, none.
	DefaultDomain string
	// Sessions, if not nil, registers each authenticated session (protocol
	// "smtp"); ending it closes the client and the upstream connections.
	Sessions proxy.Sessions
	// TLSConfig serves STARTTLS on Serve and implicit TLS on ServeTLS. If
	// nil, Serve offers no STARTTLS and ServeTLS fails. STARTTLS uses a
	// copy made at the first Serve (its GetCertificate still runs).
	TLSConfig *tls.Config
	// AllowCleartext offers AUTH on connections without TLS. If false, AUTH
	// needs STARTTLS first (RFC 4954 §4, RFC 8314).
	AllowCleartext bool
	// MFAMessage is the text of "534 5.7.9" to a primary password of an MFA
	// account (see proxy.MFAText). If empty, proxy.MFAText("", "").
	MFAMessage string
	// RelinkMessage is the text of "535 5.7.8" when the user must link the
	// mailbox again in the portal (upstream.RelinkError). If empty,
	// proxy.RelinkText("").
	RelinkMessage string
	// DeviceMessage is the text of "535 5.7.8" when a login is refused
	// because its app password is bound to another device
	// (authn.DeviceRefused). "" = proxy.DeviceRefusedText("").
	DeviceMessage string
	// Hostname is the name in the greeting. If empty, os.Hostname().
	Hostname string
	// Limits bound what a client costs before AUTH succeeds. Every read
	// and write, and the TLS handshake, is bounded by PreauthTimeout (or
	// ReadTimeout and WriteTimeout if shorter): an idle client gets "421
	// 4.4.2 Idle timeout". After MaxFailedLogins refused AUTHs (the
	// Authenticator's rate-limit refusals, 454, included) it gets 421 and
	// is closed; instead of the line after MaxPreauthCommands (commands,
	// malformed ones and SASL responses), "421 4.7.0 Too many commands
	// before authentication"; past Conns, "421 4.7.0 Too many connections,
	// try again later" instead of the greeting. MaxLine and MaxLiteral do
	// not apply: go-smtp bounds every line at 2000 bytes.
	Limits proxy.Limits
	// ReadTimeout bounds each read from the client (command lines, and each
	// read of a message body) once it is authenticated. If zero, 5m (RFC
	// 5321 §4.5.3.2).
	ReadTimeout time.Duration
	// WriteTimeout bounds each reply once the client is authenticated. If
	// zero, 5m.
	WriteTimeout time.Duration
	// MaxMessageBytes caps the message size passgate advertises and
	// accepts. If zero, the upstream's SIZE, learnt when serving starts; if
	// the upstream gives none or cannot be reached then, 50 MiB.
	MaxMessageBytes int64
	// Logger receives one line per AUTH outcome and per message. If nil,
	// slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts the message bytes relayed upstream.
	Metrics proxy.RelayMetrics
	// Reloadable's SetLimits and SetMFAMessage replace Limits and
	// MFAMessage while the server runs (a configuration reload).
	proxy.Reloadable

	setupOnce sync.Once
	srv       *gosmtp.Server
	conns     connSet

	startOnce sync.Once
	startErr  error

	lnMu      sync.Mutex
	closed    bool
	listeners []net.Listener
	refusing  sync.WaitGroup // refuseConn goroutines; Add under lnMu
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Server) deviceMessage() string {
	if s.DeviceMessage == "" {
		return proxy.DeviceRefusedText("")
	}
	return s.DeviceMessage
}

func (s *Server) relinkMessage() string {
	if s.RelinkMessage == "" {
		return proxy.RelinkText("")
	}
	return s.RelinkMessage
}

func (s *Server) mfaMessage() string {
	m := s.MFAMessageOr(s.MFAMessage)
	if m == "" {
		return proxy.MFAText("", "")
	}
	return m
}

// limits is Limits, or the last SetLimits, with the defaults applied.
func (s *Server) limits() proxy.Limits { return s.LimitsOr(s.Limits).WithDefaults() }

func (s *Server) readTimeout() time.Duration {
	if s.ReadTimeout <= 0 {
		return 5 * time.Minute
	}
	return s.ReadTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return 5 * time.Minute
	}
	return s.WriteTimeout
}

// setup builds the go-smtp server (without the upstream's capabilities).
func (s *Server) setup() {
	s.setupOnce.Do(func() {
		srv := gosmtp.NewServer(backend{s})
		srv.Domain = s.Hostname
		if srv.Domain == "" {
			srv.Domain, _ = os.Hostname()
		}
		if srv.Domain == "" {
			srv.Domain = "passgate"
		}
		srv.TLSConfig = s.startTLSConfig()
		srv.AllowInsecureAuth = s.AllowCleartext
		// Never zero: clientConn counts pre-auth lines by the read
		// deadlines go-smtp sets.
		srv.ReadTimeout = s.readTimeout()
		srv.WriteTimeout = s.writeTimeout()
		srv.ErrorLog = errorLog{s.logger()}
		s.srv = srv
	})
}

// start validates the configuration and learns the upstream's capabilities,
// once, before the first connection is accepted.
func (s *Server) start() error {
	s.setup()
	s.startOnce.Do(func() {
		if s.Auth == nil {
			s.startErr = errors.New("smtp server: no Authenticator")
			return
		}
		if s.Upstream == nil {
			s.startErr = errors.New("smtp server: no upstream")
			return
		}
		if v, ok := s.Upstream.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				s.startErr = fmt.Errorf("smtp server: %w", err)
				return
			}
		}
		s.applyCapabilities(context.Background())
	})
	return s.startErr
}

// applyCapabilities probes the upstream and sets what go-smtp advertises:
// SIZE, DSN and SMTPUTF8 as the upstream does. When the probe fails, DSN and
// SMTPUTF8 are advertised and refused per message (555 5.5.4) if the
// upstream of the session lacks them.
func (s *Server) applyCapabilities(ctx context.Context) {
	caps := upstream.SMTPFeatures{DSN: true, SMTPUTF8: true}
	if p, ok := s.Upstream.(prober); ok {
		if f, err := p.Probe(ctx); err != nil {
			s.logger().Warn("smtp upstream probe failed; advertising defaults",
				"upstream", s.Upstream, "err", err)
		} else {
			caps = f
			s.logger().Info("smtp upstream capabilities", "upstream", s.Upstream,
				"size", caps.MaxSize, "dsn", caps.DSN, "smtputf8", caps.SMTPUTF8)
		}
	}
	size := caps.MaxSize
	if s.MaxMessageBytes > 0 && (size <= 0 || s.MaxMessageBytes < size) {
		size = s.MaxMessageBytes
	}
	if size <= 0 {
		size = DefaultMaxMessageBytes
	}
	s.srv.MaxMessageBytes = size
	s.srv.EnableDSN = caps.DSN
	s.srv.EnableSMTPUTF8 = caps.SMTPUTF8
}

// prober is implemented by an Upstream that can tell what it offers
// without logging in (upstream.SMTP does).
type prober interface {
	Probe(ctx context.Context) (upstream.SMTPFeatures, error)
}

// Serve accepts submission connections on ln (RFC 6409), offering STARTTLS
// when TLSConfig is set. The first Serve or ServeTLS validates the
// configuration and probes the upstream's EHLO (within the upstream's dial
// and login timeouts) before accepting. It always returns a non-nil
// error; after Shutdown or Close, proxy.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.start(); err != nil {
		return err
	}
	return s.serve(listener{Listener: ln, srv: s})
}

// ServeTLS accepts submissions connections on ln with implicit TLS
// (RFC 8314 §3.3). It always returns a non-nil error; after Shutdown or
// Close, proxy.ErrServerClosed.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("smtp server: ServeTLS without TLSConfig")
	}
	if err := s.start(); err != nil {
		return err
	}
	return s.serve(listener{Listener: ln, srv: s, tlsConfig: s.implicitTLSConfig()})
}

// serve runs go-smtp on ln unless the server is closed; Close closes ln
// even when it raced with this call.
func (s *Server) serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.closed {
		s.lnMu.Unlock()
		ln.Close()
		return proxy.ErrServerClosed
	}
	s.listeners = append(s.listeners, ln)
	s.lnMu.Unlock()
	err := s.srv.Serve(ln)
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.closed {
		return proxy.ErrServerClosed
	}
	return err
}

// closeListeners marks the server closed and closes every listener given
// to Serve or ServeTLS.
func (s *Server) closeListeners() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
}

// Shutdown closes the listeners and waits for the sessions to end; when ctx
// is done first, it closes the remaining connections and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.setup()
	s.closeListeners()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, gosmtp.ErrServerClosed) {
		err = nil
	}
	if err == nil {
		err = proxy.Wait(ctx, &s.refusing) // the refusals in flight
	}
	if ctx.Err() != nil {
		s.conns.closeAll()
		s.refusing.Wait() // their connections are closed: they end now
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.setup()
	s.closeListeners()
	err := s.srv.Close()
	s.conns.closeAll()
	s.refusing.Wait()
	if errors.Is(err, gosmtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil // closeListeners closed them already
	}
	return err
}

// errorLog sends go-smtp's internal errors to slog.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	if closedEarly(v) {
		// A TCP health check, or a client gone before the greeting or
		// during the TLS handshake: nothing for an operator to fix.
		e.l.Debug("smtp server: " + fmt.Sprintf(format, v...))
		return
	}
	e.l.Warn("smtp server: " + fmt.Sprintf(format, v...))
}

// closedEarly reports whether go-smtp's "error handling ADDR: ERR" is the
// peer closing or resetting the connection (EOF, ECONNRESET, EPIPE).
func closedEarly(v []any) bool {
	if len(v) != 2 {
		return false
	}
	err, ok := v[1].(error)
	return ok && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

func (e errorLog) Println(v ...any) {
	e.l.Warn("smtp server: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
