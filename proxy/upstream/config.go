package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
)

// Defaults applied when the matching Config field is zero. The
// configuration file fills its keys with these same values.
const (
	DefaultMode           = ModeMaster
	DefaultTLS            = TLSNone
	DefaultSeparator      = "*"
	DefaultLocalName      = "passgate"
	DefaultDialTimeout    = 10 * time.Second
	DefaultLoginTimeout   = 30 * time.Second
	DefaultCommandTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2
)

// Config is one upstream server and how passgate logs in to it as the
// user: the one configuration every protocol's client is made of
// (Config.IMAP, Config.SMTP). Fields are read-only once in use; a zero
// field means its default.
type Config struct {
	// Address is host:port of the server. Required.
	Address string
	// TLS is how the connection is protected. "" = TLSNone.
	TLS TLSMode
	// TLSConfig is used when TLS is not none. nil: the system roots. An
	// empty ServerName is the host of Address, a zero MinVersion TLS 1.2
	// (TLSClientConfig).
	TLSConfig *tls.Config
	// Mode is how passgate logs in as the user. "" = ModeMaster.
	Mode Mode
	// MasterUser and MasterSecret are the master credentials of
	// ModeMaster and ModeLoginMaster (required there, unused otherwise).
	MasterUser   string
	MasterSecret string
	// Tokens gives the user's OAuth 2.0 access token to ModeXOAuth2 and
	// ModeOAuthBearer (required there, unused otherwise): an
	// *oauth.Cache, shared by every upstream that uses the same [oauth].
	Tokens Tokens
	// Separator joins user and master user where a mode sends them as one
	// name (Dovecot auth_master_user_separator). "" = "*".
	Separator string
	// SendID (IMAP) sends ID ("x-originating-ip" ip "x-originating-port"
	// port ["x-session-id" id]) before login (RFC 2971); Dovecot honours
	// it only from login_trusted_networks. It is skipped if the upstream's
	// known capabilities lack ID. SMTP forwards the client's address with
	// ModeXCLIENT instead.
	SendID bool
	// SendProxy, if set, sends a PROXY protocol header (ProxyV1, ProxyV2)
	// with the client's address first on every connection; the server
	// must expect one (Dovecot: haproxy = yes on the inet_listener and
	// haproxy_trusted_networks). "" = none.
	SendProxy ProxyVersion
	// LocalName (SMTP) is the EHLO name. "" = "passgate".
	LocalName string
	// DialTimeout bounds the TCP connect. 0 = 10s.
	DialTimeout time.Duration
	// LoginTimeout bounds everything after the connect up to the logged-in
	// connection: TLS, greeting, STARTTLS, ID or EHLO and XCLIENT, and the
	// login itself. 0 = 30s.
	LoginTimeout time.Duration
	// CommandTimeout (SMTP) bounds each command after login, including
	// each write of a message body and the reply to its final dot.
	// 0 = 5m.
	CommandTimeout time.Duration
	// Pool (IMAP) keeps up to this many connections that have read the
	// greeting and finished TLS or STARTTLS, dialled in the background
	// while logins come, so that a login costs its own round trips only.
	// 0 = none. Only clients made by Config.IMAP have a pool (Close it);
	// none with SendProxy, whose header names the client and must come
	// first.
	Pool int
	// PoolMaxAge is how long a pooled connection may wait for a login
	// before it is closed; it must stay below the upstream's pre-login
	// timeout. 0 = 30s.
	PoolMaxAge time.Duration
	// Logger receives a Debug line per login. nil = no logs.
	Logger *slog.Logger
	// Metrics, if not nil, observes every login that dialled.
	Metrics Metrics

	pool *pool // ready connections (Pool), made by Config.IMAP
}

// Metrics observes upstream logins (internal/metrics implements it):
// protocol is "IMAP" or "SMTP", d the time from dial to the logged-in
// connection or the failure, err the failure (nil on success).
type Metrics interface {
	UpstreamLogin(protocol string, d time.Duration, err error)
}

// IMAP returns the IMAP client of the upstream c describes, with its own
// pool of ready connections if c.Pool is set (see Pool): Close it when
// done. Its TLS configuration is resolved once, so that TLS sessions to
// the upstream can be resumed.
func (c Config) IMAP() *IMAP {
	u := IMAP(c)
	if conf, err := c.TLSClientConfig(); err == nil && conf != nil {
		u.TLSConfig = conf
	}
	if c.Pool > 0 && c.SendProxy == ProxyNone && canPool {
		u.pool = newPool(c.Pool, orDefault(c.PoolMaxAge, DefaultPoolMaxAge), u.ready)
	}
	return &u
}

// SMTP returns the submission client of the upstream c describes.
func (c Config) SMTP() *SMTP { u := SMTP(c); return &u }

// LogValue names the upstream by its address: a Config (or an IMAP or
// SMTP) given to slog never prints the master secret.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.Address) }

func (c *Config) mode() Mode { return or(c.Mode, DefaultMode) }

func (c *Config) tlsMode() TLSMode { return or(c.TLS, DefaultTLS) }

func (c *Config) separator() string { return or(c.Separator, DefaultSeparator) }

func (c *Config) localName() string { return or(c.LocalName, DefaultLocalName) }

// or returns v, or def if v is empty.
func or[S ~string](v, def S) S {
	if v == "" {
		return def
	}
	return v
}

func (c *Config) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }

func (c *Config) loginTimeout() time.Duration { return orDefault(c.LoginTimeout, DefaultLoginTimeout) }

func (c *Config) commandTimeout() time.Duration {
	return orDefault(c.CommandTimeout, DefaultCommandTimeout)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// TLSClientConfig returns the TLS configuration of the connection to the
// upstream, nil with TLSNone: TLSConfig (or a new one) with ServerName
// defaulting to the host of Address (unless InsecureSkipVerify),
// MinVersion to TLS 1.2 and ClientSessionCache to a new cache (sessions
// are resumed when the result is kept, as Config.IMAP does). TLSConfig
// itself is never changed.
func (c *Config) TLSClientConfig() (*tls.Config, error) {
	if c.tlsMode() == TLSNone {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w", err)
	}
	conf := c.TLSConfig
	if conf == nil {
		conf = &tls.Config{}
	}
	setName := conf.ServerName == "" && !conf.InsecureSkipVerify
	if !setName && conf.MinVersion != 0 && conf.ClientSessionCache != nil {
		return conf, nil
	}
	conf = conf.Clone()
	if setName {
		conf.ServerName = host
	}
	if conf.MinVersion == 0 {
		conf.MinVersion = tls.VersionTLS12
	}
	if conf.ClientSessionCache == nil {
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return conf, nil
}

// ErrInvalid is wrapped by every *FieldError: the Config cannot work.
var ErrInvalid = errors.New("invalid upstream configuration")

// FieldError says what is wrong with one Config field.
type FieldError struct {
	// Field is the field's name as the configuration file spells it
	// (address, tls, login, master_user, master_secret, master_separator).
	Field string
	Msg   string // never holds the master secret
}

func (e *FieldError) Error() string {
	return "upstream " + strings.ReplaceAll(e.Field, "_", " ") + ": " + e.Msg
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// problems lists what is wrong with c for protocol p; none if c can work.
func (c *Config) problems(p protocol) []*FieldError {
	var errs []*FieldError
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkAddress(c.Address); msg != "" {
		fail("address", "%s", msg)
	}
	if !slices.Contains(tlsModes, c.tlsMode()) {
		fail("tls", "mode %q is not one of %s", c.TLS, join(tlsModes))
	}
	switch m := c.mode(); {
	case !slices.Contains(p.modes, m) && slices.Contains(allModes, m):
		fail("login", "%s is not a login mode of %s upstreams, which use %s", m, p.name, join(p.modes))
	case !slices.Contains(p.modes, m):
		fail("login", "mode %q is not one of %s", m, join(p.modes))
	case m.NeedsMaster():
		if c.MasterUser == "" {
			fail("master_user", "required with login = %q", m)
		} else if !printableASCII(c.MasterUser) {
			fail("master_user", "must be printable ASCII")
		}
		if c.MasterSecret == "" {
			fail("master_secret", "required with login = %q", m)
		}
	}
	if c.SendProxy != ProxyNone && c.SendProxy != ProxyV1 && c.SendProxy != ProxyV2 {
		fail("send_proxy", "%q is not one of v1, v2 (or empty: none)", c.SendProxy)
	}
	if msg := checkSeparator(c.separator()); msg != "" {
		fail("master_separator", "%s", msg)
	}
	return errs
}

// validate is problems as one error.
func (c *Config) validate(p protocol) error {
	var errs []error
	for _, e := range c.problems(p) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// checkAddress says what is wrong with a host:port, or "".
func checkAddress(addr string) string {
	if addr == "" {
		return "required: host:port of the upstream server"
	}
	host, port, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("%q is not host:port: %s", addr, ae.Err)
	case err != nil:
		return fmt.Sprintf("%q is not host:port: %v", addr, err)
	case host == "" || port == "":
		return fmt.Sprintf("%q needs both a host and a port", addr)
	}
	return ""
}

// checkSeparator says what is wrong with a master user separator, or "".
// Dovecot uses the first character of auth_master_user_separator only, and
// no user name may contain the separator (authn refuses such names, the
// modes refuse them again), so it must be one character that ordinary user
// names do not hold.
func checkSeparator(sep string) string {
	switch {
	case len(sep) != 1 || !printableASCII(sep) || sep == " ":
		return "must be one printable ASCII character other than a space, like Dovecot's auth_master_user_separator"
	case strings.ContainsAny(sep, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@-_"):
		return fmt.Sprintf("%q would refuse ordinary user names (no user name may contain the separator): use a character such as * or %%", sep)
	}
	return ""
}

func printableASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) < 0
}

func join[S ~string](values []S) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = string(v)
	}
	return strings.Join(parts, ", ")
}
