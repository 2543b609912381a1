package config

import (
	"strings"

	"github.com/passgate/passgate/proxy/upstream"
)

// SMTP configures the submission listeners (RFC 6409, RFC 8314) and the
// submission server behind them. The section is optional; when neither
// listener is set, passgate serves no SMTP.
type SMTP struct {
	// Listen is the plain TCP submission address offering STARTTLS
	// (RFC 3207), e.g. "0.0.0.0:587". Empty: no such listener.
	Listen string `toml:"listen"`
	// ListenTLS is the implicit TLS submissions address (RFC 8314 §3.3),
	// e.g. "0.0.0.0:465". Empty: no such listener. Requires tls.cert_file.
	ListenTLS string `toml:"listen_tls"`
	// AllowCleartext offers AUTH before TLS. Default false; tests and
	// loopback only.
	AllowCleartext bool `toml:"allow_cleartext"`
	// CheckSender requires MAIL FROM to be the authenticated account or one
	// of its aliases (`passgate user alias add`). Default true; set false
	// to leave sender policy to the upstream.
	CheckSender *bool `toml:"check_sender"`
	// DefaultDomain, if set, lets an account whose name has no "@" (the
	// upstream login name, "alice") send as that name at this domain
	// ("alice@example.org") without an alias. Empty: no such address.
	DefaultDomain string `toml:"default_domain"`
	// Upstream is the real submission server (Dovecot submission, Postfix).
	// Login may also be "xclient" (Postfix XCLIENT from a trusted proxy).
	Upstream Upstream `toml:"upstream"`
}

// Enabled reports whether any SMTP listener is configured.
func (s *SMTP) Enabled() bool { return s.Listen != "" || s.ListenTLS != "" }

// SenderCheck reports whether MAIL FROM is checked (the default).
func (s *SMTP) SenderCheck() bool { return s.CheckSender == nil || *s.CheckSender }

// smtp checks the submission listeners, then their upstream.
func (l *loader) smtp(s *SMTP, haveCert bool) {
	if !s.Enabled() {
		return
	}
	l.listeners("smtp", s.Listen, s.ListenTLS, s.AllowCleartext, haveCert)
	if d := s.DefaultDomain; strings.ContainsAny(d, "@ \t") || strings.HasPrefix(d, ".") {
		l.fail("smtp.default_domain", nil, "%q is not a domain name (like example.org, without @)", d)
	}
	s.Upstream.resolve(l, "smtp.upstream", func(c upstream.Config) error { return c.SMTP().Validate() })
}
