package config

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/passgate/passgate/internal/certfile"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// Defaults; each field's doc comment in config.go states the same.
const (
	defaultStoreFile      = "passgate.db"
	defaultSocketFile     = "passgate.sock"
	defaultArgonMemoryKiB = 19456
	defaultArgonTime      = 2
	defaultArgonThreads   = 1
	defaultShutdownGrace  = 30 * time.Second
	defaultLogLevel       = "info"
	defaultLogFormat      = "text"

	minLineOrLiteral = 512 // a LOGIN with a long address and password fits
	maxMFAText       = 400 // fits an SMTP reply line (RFC 5321 §4.5.3.1.5: 512 with code)
)

// check fills defaults and validates c, section by section.
func (l *loader) check(c *Config) {
	l.serverTLS(&c.TLS)
	l.imap(&c.IMAP, c.TLS.CertFile != "", c.SMTP.Enabled())
	l.smtp(&c.SMTP, c.TLS.CertFile != "")
	l.pop3(&c.POP3, c.TLS.CertFile != "")
	l.sieve(&c.Sieve, c.TLS.CertFile != "")
	l.storeAndControl(&c.Store, &c.Control)
	l.authn(&c.Authn, &c.Portal)
	l.limits(&c.Limits)
	l.guardLimits(&c.Limits.GuardLimits)
	l.sessions(&c.Sessions)
	l.directory(&c.Directory)
	l.audit(&c.Audit)
	l.portal(c)
	l.portalOIDC(&c.Portal)
	l.oauth(&c.OAuth, &c.Portal)
	l.oauthLogins(c)
	l.log(&c.Log)
	l.metrics(&c.Metrics)
	l.proxyProtocol(&c.ProxyProtocol)
	l.notify(&c.Notify, &c.SMTP)
}

// serverTLS loads passgate's own key pair.
func (l *loader) serverTLS(t *TLS) {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return
	case t.KeyFile == "":
		l.fail("tls.key_file", nil, "required with tls.cert_file")
		return
	case t.CertFile == "":
		l.fail("tls.cert_file", nil, "required with tls.key_file")
		return
	}
	t.CertFile, t.KeyFile = l.path(t.CertFile), l.path(t.KeyFile)
	certPEM, err := readFile(t.CertFile, maxPEMFile)
	if err != nil {
		l.fail("tls.cert_file", err, "%v", err)
	}
	keyPEM, kerr := readFile(t.KeyFile, maxPEMFile)
	if kerr != nil {
		l.fail("tls.key_file", kerr, "%v", kerr)
	}
	if err != nil || kerr != nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		l.fail("tls.cert_file", err, "key pair %s + %s does not load: %v", t.CertFile, t.KeyFile, err)
		return
	}
	r, err := certfile.Load(t.CertFile, t.KeyFile)
	if err != nil {
		l.fail("tls.cert_file", err, "%v", err)
		return
	}
	t.Reloader = r
	t.Config = &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
}

// imap checks the listeners, then the upstream they lead to. The section is
// optional when SMTP is configured.
func (l *loader) imap(m *IMAP, haveCert, haveSMTP bool) {
	if m.Listen == "" && m.ListenTLS == "" {
		if !haveSMTP {
			l.fail("imap.listen", nil, "no listener: set imap.listen or imap.listen_tls (or smtp.listen)")
		}
		return
	}
	l.listeners("imap", m.Listen, m.ListenTLS, m.AllowCleartext, haveCert)
	m.Upstream.resolve(l, "imap.upstream", func(c upstream.Config) error { return c.IMAP().Validate() })
}

// listeners checks a protocol's plain (STARTTLS) and implicit TLS listener
// addresses against the certificate and the cleartext switch.
func (l *loader) listeners(proto, plain, implicit string, cleartext, haveCert bool) {
	if plain != "" {
		l.listenAddr(proto+".listen", plain)
		if !haveCert && !cleartext {
			l.fail(proto+".allow_cleartext", nil,
				"%s.listen without tls.cert_file cannot offer STARTTLS, so no client could log in: "+
					"configure tls.cert_file and tls.key_file, or set allow_cleartext = true (tests and loopback only)", proto)
		}
	}
	if implicit != "" {
		l.listenAddr(proto+".listen_tls", implicit)
		if !haveCert {
			l.fail(proto+".listen_tls", nil, "needs tls.cert_file and tls.key_file")
		}
	}
}

// listenAddr checks a host:port to listen on; port 0 picks a free port.
func (l *loader) listenAddr(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.fail(key, err, "%q is not host:port: %s", addr, addrErr(err))
		return
	}
	if port == "" {
		l.fail(key, nil, "%q has no port", addr)
	}
}

func (l *loader) storeAndControl(s *Store, ctl *Control) {
	if s.Backend == "" {
		s.Backend = StoreBolt
	}
	l.redis(&s.Redis, s.Backend == StoreRedis)
	if s.Path == "" {
		s.Path = defaultStoreFile
	}
	s.Path = l.path(s.Path)
	if ctl.Socket == "" {
		ctl.Socket = filepath.Join(filepath.Dir(s.Path), defaultSocketFile)
	}
	ctl.Socket = l.path(ctl.Socket)
}

func (l *loader) authn(a *Authn, p *Portal) {
	if a.ArgonMemoryKiB == 0 {
		a.ArgonMemoryKiB = defaultArgonMemoryKiB
	}
	if a.ArgonTime == 0 {
		a.ArgonTime = defaultArgonTime
	}
	if a.ArgonThreads == 0 {
		a.ArgonThreads = defaultArgonThreads
	}
	if a.ArgonMemoryKiB < 8*uint32(a.ArgonThreads) {
		l.fail("authn.argon_memory_kib", nil, "%d is below 8 × argon_threads (%d), the argon2id minimum",
			a.ArgonMemoryKiB, 8*uint32(a.ArgonThreads))
	}

	switch {
	case a.UnusedAfter.Duration < 0:
		l.fail("authn.unused_after", nil, "%s is negative", a.UnusedAfter.Duration)
	case a.UnusedWarnBefore.Duration < 0:
		l.fail("authn.unused_warn_before", nil, "%s is negative", a.UnusedWarnBefore.Duration)
	case a.UnusedAfter.Duration > 0 && a.UnusedWarnBefore.Duration >= a.UnusedAfter.Duration:
		l.fail("authn.unused_warn_before", nil, "%s is not below authn.unused_after (%s)",
			a.UnusedWarnBefore.Duration, a.UnusedAfter.Duration)
	}

	switch a.DevicePolicy {
	case "", store.DevicePolicyNotify, store.DevicePolicyBlock, store.DevicePolicyOff:
	default:
		l.fail("authn.device_policy", nil, "%q is not notify, block or off", a.DevicePolicy)
	}

	urlOK := true
	if p.URL != "" {
		u, err := url.Parse(p.URL)
		switch {
		case err != nil || !printableASCII(p.URL):
			l.fail("portal.url", nil, "%q is not a URL of printable ASCII characters", p.URL)
			urlOK = false
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			l.fail("portal.url", nil, "%q is not an absolute http or https URL", p.URL)
			urlOK = false
		}
	}
	if p.URL == "" && strings.Contains(a.MFAMessage, proxy.PortalPlaceholder) {
		l.fail("authn.mfa_message", nil, "uses %s but portal.url is not set", proxy.PortalPlaceholder)
		return
	}
	// The text goes into an IMAP [ALERT] (RFC 3501 §9: TEXT-CHAR excludes
	// CR and LF) and an SMTP reply (RFC 5321 §4.2: ASCII).
	text := (&Config{Authn: *a, Portal: *p}).MFAText()
	switch {
	case !urlOK:
	case !printableASCII(a.MFAMessage):
		l.fail("authn.mfa_message", nil, "must be printable ASCII (no line breaks, no control characters)")
	case len(text) > maxMFAText:
		l.fail("authn.mfa_message", nil, "is %d bytes with portal.url substituted, more than %d", len(text), maxMFAText)
	}
}

// limits validates m. The front-ends' limits keep zero, their components'
// default (proxy.Limits, proxy.Splice).
func (l *loader) limits(m *Limits) {
	l.duration("limits.preauth_timeout", &m.PreauthTimeout, 0, 0)
	l.duration("limits.idle_timeout", &m.IdleTimeout, 0, time.Second)
	l.duration("limits.shutdown_grace", &m.ShutdownGrace, defaultShutdownGrace, 0)
	l.count("limits.max_line", &m.MaxLine, 0, minLineOrLiteral)
	l.count("limits.max_literal", &m.MaxLiteral, 0, minLineOrLiteral)
	l.count("limits.max_failed_logins", &m.MaxFailedLogins, 0, 1)
}

// duration applies def to a zero d and rejects a negative d or one below min.
func (l *loader) duration(key string, d *Duration, def, min time.Duration) {
	switch {
	case d.Duration == 0:
		d.Duration = def
	case d.Duration < 0:
		l.fail(key, nil, "%s is negative", d.Duration)
	case d.Duration < min:
		l.fail(key, nil, "%s is below the minimum of %s", d.Duration, min)
	}
}

// count applies def to a zero n and rejects a negative n or one below min.
func (l *loader) count(key string, n *int, def, min int) {
	switch {
	case *n == 0:
		*n = def
	case *n < 0:
		l.fail(key, nil, "%d is negative", *n)
	case *n < min:
		l.fail(key, nil, "%d is below the minimum of %d", *n, min)
	}
}

func (l *loader) log(g *Log) {
	if g.Level == "" {
		g.Level = defaultLogLevel
	}
	if g.Format == "" {
		g.Format = defaultLogFormat
	}
	if _, err := oneOf(g.Level, logLevels); err != nil {
		l.fail("log.level", nil, "%v", err)
	}
	if _, err := oneOf(g.Format, logFormats); err != nil {
		l.fail("log.format", nil, "%v", err)
	}
}

// printableASCII reports whether s holds only 0x20..0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// addrErr returns the reason of a net.SplitHostPort error without the
// address, which the caller quotes.
func addrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}
