package config

import (
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PortalServer are the [portal] keys of the web portal's listener, its
// key, sessions, and the mail settings it shows users. The portal runs when
// Listen or ListenTLS is set.
type PortalServer struct {
	// Listen is a plain HTTP address, e.g. "127.0.0.1:8080": for a reverse
	// proxy that terminates TLS, or loopback. Empty: no such listener.
	Listen string `toml:"listen"`
	// ListenTLS is an HTTPS address using tls.cert_file, e.g.
	// "0.0.0.0:443". Empty: no such listener.
	ListenTLS string `toml:"listen_tls"`
	// KeyFile holds the 32-byte key that seals TOTP secrets at rest: 64
	// hex digits or base64 (`openssl rand -hex 32`); surrounding white
	// space is trimmed. The environment variable PASSGATE_PORTAL_KEY
	// overrides it. Required when the portal runs. Losing it means every
	// user enrols their authenticator again.
	KeyFile string `toml:"key_file"`
	// Issuer names the service in authenticator apps. Default "passgate".
	Issuer string `toml:"issuer"`
	// SessionTTL is how long a portal sign-in lasts. Default 8h; at least
	// 5m.
	SessionTTL Duration `toml:"session_ttl"`
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the
	// client (CIDR prefixes). Default none.
	TrustedProxies []netip.Prefix `toml:"trusted_proxies"`
	// IMAPHost, IMAPPort and IMAPSecurity ("tls", "starttls" or "none")
	// are what users are told to configure for IMAP (result page,
	// autoconfig, Autodiscover, .mobileconfig). "none" (no TLS at all) is
	// accepted only when IMAPHost is a loopback address or "localhost".
	// Defaults: the host of portal.url; "tls" if imap.listen_tls is set,
	// else "none" if imap.listen has allow_cleartext, there is no
	// tls.cert_file and the host is loopback (the demo), else "starttls";
	// the port of that listener, or 993 / 143.
	IMAPHost     string `toml:"imap_host"`
	IMAPPort     int    `toml:"imap_port"`
	IMAPSecurity string `toml:"imap_security"`
	// SMTPHost, SMTPPort and SMTPSecurity are the same for SMTP
	// submission. Defaults: imap_host; "tls" if smtp.listen_tls is set,
	// else "none" under the same conditions as IMAP's, else "starttls";
	// the port of that listener, or 465 / 587.
	SMTPHost     string `toml:"smtp_host"`
	SMTPPort     int    `toml:"smtp_port"`
	SMTPSecurity string `toml:"smtp_security"`
	// POP3Host, POP3Port and POP3Security are the same for POP3, shown
	// only if [pop3] has a listener. Defaults: imap_host; "tls" if
	// pop3.listen_tls is set, else as IMAP's; that listener's port, or
	// 995 / 110.
	POP3Host     string `toml:"pop3_host"`
	POP3Port     int    `toml:"pop3_port"`
	POP3Security string `toml:"pop3_security"`

	// Key is the key read from KeyFile or the environment. Never printed.
	Key []byte `toml:"-"`
	// KeyFrom says where Key came from ("file PATH" or "env
	// PASSGATE_PORTAL_KEY"), for humans.
	KeyFrom string `toml:"-"`
}

// Enabled reports whether the portal has a listener.
func (p *PortalServer) Enabled() bool { return p.Listen != "" || p.ListenTLS != "" }

const (
	portalKeyEnv            = "PASSGATE_PORTAL_KEY"
	defaultPortalIssuer     = "passgate"
	defaultPortalSessionTTL = 8 * time.Hour
	minPortalSessionTTL     = 5 * time.Minute
	maxPortalKeyFile        = 4 << 10
)

// Values of portal.imap_security and portal.smtp_security.
const (
	mailTLS      = "tls"
	mailStartTLS = "starttls"
	mailNone     = "none" // no TLS: loopback hosts only
)

var mailSecurities = []string{mailTLS, mailStartTLS, mailNone}

// portal validates the portal's keys of c (after imap, smtp and authn,
// whose results it uses).
func (l *loader) portal(c *Config) {
	p := &c.Portal.PortalServer
	if p.Issuer == "" {
		p.Issuer = defaultPortalIssuer
	}
	l.duration("portal.session_ttl", &p.SessionTTL, defaultPortalSessionTTL, minPortalSessionTTL)
	for i, pfx := range p.TrustedProxies {
		if !pfx.IsValid() {
			l.fail("portal.trusted_proxies", nil, "entry %d is not a CIDR prefix", i+1)
			continue
		}
		p.TrustedProxies[i] = pfx.Masked()
	}
	host := ""
	if u, err := url.Parse(c.Portal.URL); err == nil {
		host = u.Hostname()
	}
	if p.IMAPHost == "" {
		p.IMAPHost = host
	}
	if p.SMTPHost == "" {
		p.SMTPHost = p.IMAPHost
	}
	haveCert := c.TLS.CertFile != ""
	imap := mailListeners{c.IMAP.Listen, c.IMAP.ListenTLS, c.IMAP.AllowCleartext && !haveCert, 993, 143}
	smtp := mailListeners{c.SMTP.Listen, c.SMTP.ListenTLS, c.SMTP.AllowCleartext && !haveCert, 465, 587}
	p.IMAPSecurity, p.IMAPPort = l.mailEndpoint("imap", p.IMAPHost, p.IMAPSecurity, p.IMAPPort, imap)
	p.SMTPSecurity, p.SMTPPort = l.mailEndpoint("smtp", p.SMTPHost, p.SMTPSecurity, p.SMTPPort, smtp)
	if c.POP3.Enabled() {
		if p.POP3Host == "" {
			p.POP3Host = p.IMAPHost
		}
		pop3 := mailListeners{c.POP3.Listen, c.POP3.ListenTLS, c.POP3.AllowCleartext && !haveCert, 995, 110}
		p.POP3Security, p.POP3Port = l.mailEndpoint("pop3", p.POP3Host, p.POP3Security, p.POP3Port, pop3)
	}
	if !p.Enabled() {
		return
	}
	if p.Listen != "" {
		l.listenAddr("portal.listen", p.Listen)
	}
	if p.ListenTLS != "" {
		l.listenAddr("portal.listen_tls", p.ListenTLS)
		if c.TLS.CertFile == "" {
			l.fail("portal.listen_tls", nil, "needs tls.cert_file and tls.key_file")
		}
	}
	l.portalURL(c.Portal.URL)
	l.portalKey(p)
	if p.IMAPHost == "" {
		l.fail("portal.imap_host", nil, "required: the host name mail clients connect to")
	}
}

// portalURL requires portal.url for a running portal; plain http only on a
// loopback host, since the session cookie is Secure elsewhere.
func (l *loader) portalURL(raw string) {
	if raw == "" {
		l.fail("portal.url", nil, "required with portal.listen or portal.listen_tls: the portal's public URL")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return // authn() reported a bad URL already
	}
	if !loopbackHost(u.Hostname()) {
		l.fail("portal.url", nil, "%q: plain http works only on localhost (the session cookie is Secure): use https", raw)
	}
}

// mailListeners is what one protocol's section says about the listeners
// mail clients reach, and its standard ports.
type mailListeners struct {
	listen, listenTLS string
	// cleartextOnly: listen takes logins before TLS and cannot offer
	// STARTTLS (allow_cleartext without tls.cert_file).
	cleartextOnly      bool
	tlsPort, plainPort int
}

// mailEndpoint validates and defaults one protocol's security and port:
// tls if the protocol has an implicit TLS listener; none if its plain
// listener is cleartext only and clients reach it on loopback; else
// starttls. The port is that listener's if it has a fixed one, else the
// standard port.
func (l *loader) mailEndpoint(proto, host, sec string, port int, ml mailListeners) (string, int) {
	prefix := "portal." + proto + "_"
	if sec == "" {
		switch {
		case ml.listenTLS != "":
			sec = mailTLS
		case ml.listen != "" && ml.cleartextOnly && loopbackHost(host):
			sec = mailNone
		default:
			sec = mailStartTLS
		}
	}
	if _, err := oneOf(sec, mailSecurities); err != nil {
		l.fail(prefix+"security", nil, "%v", err)
		return sec, port
	}
	if sec == mailNone && !loopbackHost(host) {
		l.fail(prefix+"security", nil, "%q needs a loopback %shost (127.0.0.1, ::1 or localhost), not %q: "+
			"cleartext logins over a network are refused; use tls or starttls", sec, prefix, host)
		return sec, port
	}
	if port == 0 {
		port, addr := ml.plainPort, ml.listen
		if sec == mailTLS {
			port, addr = ml.tlsPort, ml.listenTLS
		}
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				port = n
			}
		}
		return sec, port
	}
	if port < 0 || port > 65535 {
		l.fail(prefix+"port", nil, "%d is not a TCP port", port)
	}
	return sec, port
}

// loopbackHost reports whether host is "localhost" or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// portalKey reads the key from the environment or KeyFile.
func (l *loader) portalKey(p *PortalServer) {
	var text string
	switch {
	case l.env(portalKeyEnv) != "":
		text, p.KeyFrom = l.env(portalKeyEnv), "env "+portalKeyEnv
	case p.KeyFile != "":
		p.KeyFile = l.path(p.KeyFile)
		b, err := readFile(p.KeyFile, maxPortalKeyFile)
		if err != nil {
			l.fail("portal.key_file", err, "%v", err)
			return
		}
		text, p.KeyFrom = string(b), "file "+p.KeyFile
	default:
		l.fail("portal.key_file", nil, "required when the portal runs: a file with 32 random bytes "+
			"(`openssl rand -hex 32`), or the environment variable %s", portalKeyEnv)
		return
	}
	key, ok := decodeKey(strings.TrimSpace(text))
	if !ok {
		l.fail("portal.key_file", nil, "the key from %s is not 32 bytes in hex (64 digits) or base64", p.KeyFrom)
		return
	}
	p.Key = key
}

// decodeKey decodes 32 bytes written in hex or base64 (standard or URL,
// padded or not).
func decodeKey(s string) ([]byte, bool) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, true
		}
	}
	return nil, false
}
