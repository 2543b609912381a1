package main

import (
	"fmt"
	"log/slog"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/portal"
	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// portalOIDC maps [portal.oidc] onto the portal's OIDC sign-in; nil when
// it is off.
func portalOIDC(o config.PortalOIDC) *portal.OIDCConfig {
	if !o.Enabled() {
		return nil
	}
	return &portal.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
		UsernameClaim: o.UsernameClaim, AllowedDomains: o.AllowedDomains, RequiredAMR: o.RequiredAMR,
		RequiredACR: o.RequiredACR, AdminClaim: o.AdminClaim, AdminValue: o.AdminValue, ButtonLabel: o.ButtonLabel}
}

// mailboxLink is the portal's link flow of [oauth] mode delegated; nil in
// other modes.
func mailboxLink(s oauth.Settings) (*portal.LinkConfig, error) {
	if s.Mode != oauth.ModeDelegated {
		return nil, nil
	}
	cfg, err := s.DelegatedConfig()
	if err != nil {
		return nil, fmt.Errorf("mailbox link: %w", err)
	}
	names := map[string]string{oauth.ProviderMicrosoft: "Microsoft 365", oauth.ProviderGoogle: "Google"}
	return &portal.LinkConfig{OAuth2: cfg, Options: s.LinkOptions(), Provider: names[s.Provider],
		// The presets are OpenID Connect providers; a custom token_url may not be.
		CheckIdentity: s.Provider != ""}, nil
}

// mailboxLinks is where delegated mode keeps the users' refresh tokens: in
// their accounts, sealed with the portal's key. The upstream login's
// oauth.Delegated source reads and rotates them through it:
//
//	src, err := cfg.OAuth.Source(mailboxLinks(cfg, c, log))
func mailboxLinks(cfg *config.Config, c *core, log *slog.Logger) *portal.MailboxLinks {
	return &portal.MailboxLinks{Store: c.st, Key: cfg.Portal.Key, Logger: log}
}

// upstreamTokens is the one token cache of the upstream logins that use
// OAuth 2.0 (login = "xoauth2" or "oauthbearer"), shared by IMAP and SMTP
// so that a user's token is fetched once for both; nil without [oauth].
func upstreamTokens(cfg *config.Config, c *core, log *slog.Logger) (*oauth.Cache, error) {
	if cfg.OAuth.Mode == "" {
		return nil, nil
	}
	var links oauth.RefreshStore
	if cfg.OAuth.Mode == oauth.ModeDelegated {
		links = mailboxLinks(cfg, c, log)
	}
	src, err := cfg.OAuth.Source(links)
	if err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	return &oauth.Cache{Source: src}, nil
}
