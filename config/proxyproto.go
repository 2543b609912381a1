package config

import (
	"net/netip"
	"slices"
	"strings"
)

// ProxyProtocolListeners are the listener keys that may take PROXY
// protocol headers.
var ProxyProtocolListeners = []string{"imap.listen", "imap.listen_tls", "smtp.listen", "smtp.listen_tls"}

// ProxyProtocol is the [proxy_protocol] section: PROXY protocol v1 and v2
// headers from load balancers in front of passgate (proxy.ProxyListener).
type ProxyProtocol struct {
	// Listeners names the listeners that take headers, by their keys
	// ("imap.listen_tls", "smtp.listen"...). Empty: none.
	Listeners []string `toml:"listeners"`
	// TrustedProxies are the balancers' networks: a connection from them
	// must send a header, whose client address then counts everywhere; a
	// header from anywhere else is not honoured. Required with Listeners.
	TrustedProxies []netip.Prefix `toml:"trusted_proxies"`
}

// On reports whether the listener at key takes headers.
func (p *ProxyProtocol) On(key string) bool { return slices.Contains(p.Listeners, key) }

func (l *loader) proxyProtocol(p *ProxyProtocol) {
	for _, k := range p.Listeners {
		if !slices.Contains(ProxyProtocolListeners, k) {
			l.fail("proxy_protocol.listeners", nil, "%q is not one of %s", k, strings.Join(ProxyProtocolListeners, ", "))
		}
	}
	for i, pr := range p.TrustedProxies {
		if !pr.IsValid() {
			l.fail("proxy_protocol.trusted_proxies", nil, "entry %d is not a CIDR prefix", i+1)
			continue
		}
		p.TrustedProxies[i] = pr.Masked()
	}
	if len(p.Listeners) > 0 && len(p.TrustedProxies) == 0 {
		l.fail("proxy_protocol.trusted_proxies", nil, "required with proxy_protocol.listeners: the load balancers' networks")
	}
}
