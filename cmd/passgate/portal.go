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
)

// newPortal builds the self-service web portal of cfg.Portal.
func newPortal(cfg *config.Config, c *core, log *slog.Logger) *portal.Server {
	p := cfg.Portal
	return &portal.Server{
		Store:          c.st,
		Auth:           c.guard,
		Verifier:       c.v,
		Key:            p.Key,
		BaseURL:        p.URL,
		Issuer:         p.Issuer,
		SessionTTL:     p.SessionTTL.Duration,
		TrustedProxies: p.TrustedProxies,
		Logger:         log,
		Mail: portal.MailSettings{
			IMAPHost: p.IMAPHost, IMAPPort: p.IMAPPort, IMAPSecurity: portal.Security(p.IMAPSecurity),
			SMTPHost: p.SMTPHost, SMTPPort: p.SMTPPort, SMTPSecurity: portal.Security(p.SMTPSecurity),
		},
	}
}

// portalFrontEnd adapts the portal's http.Server to the frontEnd that
// serve runs for every protocol.
type portalFrontEnd struct{ srv *http.Server }

func (p portalFrontEnd) Serve(ln net.Listener) error    { return httpErr(p.srv.Serve(ln)) }
func (p portalFrontEnd) ServeTLS(ln net.Listener) error { return httpErr(p.srv.ServeTLS(ln, "", "")) }
func (p portalFrontEnd) Shutdown(ctx context.Context) error {
	if err := p.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("portal shutdown: %w", err)
	}
	return nil
}

func httpErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
