package config

import "github.com/passgate/passgate/proxy/upstream"

// POP3 configures the POP3 listeners and the POP3 server behind them
// ([pop3]; optional: no listener, no POP3).
type POP3 struct {
	// Listen is the plain TCP address offering STLS (RFC 2595), e.g.
	// "0.0.0.0:110". Empty: no such listener.
	Listen string `toml:"listen"`
	// ListenTLS is the implicit TLS address (RFC 8314), e.g.
	// "0.0.0.0:995". Empty: no such listener. Requires tls.cert_file.
	ListenTLS string `toml:"listen_tls"`
	// AllowCleartext lets clients log in before TLS, as imap's.
	AllowCleartext bool `toml:"allow_cleartext"`
	// Upstream is the real POP3 server (Dovecot), with the keys of
	// imap.upstream (send_id excepted).
	Upstream Upstream `toml:"upstream"`
}

// Enabled reports whether a POP3 listener is configured.
func (p *POP3) Enabled() bool { return p.Listen != "" || p.ListenTLS != "" }

// Sieve configures the ManageSieve listener (RFC 5804) and the server
// behind it ([sieve]; optional).
type Sieve struct {
	// Listen is the plain TCP address offering STARTTLS, e.g.
	// "0.0.0.0:4190". Empty: no ManageSieve.
	Listen string `toml:"listen"`
	// AllowCleartext lets clients log in before TLS, as imap's.
	AllowCleartext bool `toml:"allow_cleartext"`
	// Upstream is the real ManageSieve server (Dovecot), with the keys of
	// imap.upstream (send_id excepted).
	Upstream Upstream `toml:"upstream"`
}

// Enabled reports whether the ManageSieve listener is configured.
func (s *Sieve) Enabled() bool { return s.Listen != "" }

// pop3 checks the POP3 listeners and their upstream, if any.
func (l *loader) pop3(p *POP3, haveCert bool) {
	if !p.Enabled() {
		return
	}
	l.listeners("pop3", p.Listen, p.ListenTLS, p.AllowCleartext, haveCert)
	p.Upstream.resolve(l, "pop3.upstream", func(c upstream.Config) error { return c.POP3().Validate() })
}

// sieve checks the ManageSieve listener and its upstream, if any.
func (l *loader) sieve(s *Sieve, haveCert bool) {
	if !s.Enabled() {
		return
	}
	l.listeners("sieve", s.Listen, "", s.AllowCleartext, haveCert)
	s.Upstream.resolve(l, "sieve.upstream", func(c upstream.Config) error { return c.Sieve().Validate() })
}
