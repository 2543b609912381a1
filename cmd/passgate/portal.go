package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/portal"
	"github.com/passgate/passgate/proxy"
)

// newPortal builds the self-service web portal of cfg.Portal.
func newPortal(cfg *config.Config, c *core, log *slog.Logger) *portal.Server {
	p := cfg.Portal
	s := &portal.Server{
		Store:          c.st,
		Auth:           c.guard,
		Verifier:       c.v,
		Accounts:       c.accounts,
		Key:            p.Key,
		BaseURL:        p.URL,
		Issuer:         p.Issuer,
		SessionTTL:     p.SessionTTL.Duration,
		TrustedProxies: p.TrustedProxies,
		Logger:         log,
		Mail: portal.MailSettings{
			IMAPHost: p.IMAPHost, IMAPPort: p.IMAPPort, IMAPSecurity: portal.Security(p.IMAPSecurity),
			SMTPHost: p.SMTPHost, SMTPPort: p.SMTPPort, SMTPSecurity: portal.Security(p.SMTPSecurity),
			POP3: cfg.POP3.Enabled(), POP3Host: p.POP3Host, POP3Port: p.POP3Port, POP3Security: portal.Security(p.POP3Security),
		},
	}
	s.OIDC = portalOIDC(p.OIDC)
	link, err := mailboxLink(cfg.OAuth)
	if err != nil { // config.Load checked these settings already
		log.Error("portal: no mailbox link", "err", err)
	}
	s.Link = link
	// The same connection limits as IMAP's and SMTP's, counted apart.
	s.ConnLimit = &proxy.ConnLimiter{Max: cfg.Limits.MaxConnections, PerIP: cfg.Limits.MaxConnectionsPerIP,
		Shared: s.TrustedProxy}
	return s
}

// newPortalFrontEnd is the portal of cfg.Portal as serve runs it.
func newPortalFrontEnd(cfg *config.Config, c *core, log *slog.Logger) portalFrontEnd {
	s := newPortal(cfg, c, log)
	conns, _ := s.ConnLimit.(*proxy.ConnLimiter)
	return portalFrontEnd{srv: s.HTTPServer(cfg.TLS.Config), listener: s.Listener, conns: conns}
}

// portalFrontEnd adapts the portal's http.Server to the frontEnd that
// serve runs for every protocol.
type portalFrontEnd struct {
	srv      *http.Server
	listener func(net.Listener) net.Listener // applies the connection limits
	conns    *proxy.ConnLimiter              // whose caps a reload sets
}

func (p portalFrontEnd) Serve(ln net.Listener) error { return httpErr(p.srv.Serve(p.listener(ln))) }
func (p portalFrontEnd) ServeTLS(ln net.Listener) error {
	return httpErr(p.srv.ServeTLS(p.listener(ln), "", ""))
}
func (p portalFrontEnd) Shutdown(ctx context.Context) error {
	if err := p.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("portal shutdown: %w", err)
	}
	return nil
}

// httpErr gives the portal the lifecycle of the other front-ends: Serve
// ends with proxy.ErrServerClosed.
func httpErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return proxy.ErrServerClosed
	}
	return err
}
