package main

import (
	"log/slog"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/store"
)

// newSMTPServer builds the submission front end of cfg.SMTP.
func newSMTPServer(cfg *config.Config, auth proxy.Authenticator, st store.Store, reg proxy.Sessions, tokens *oauth.Cache, log *slog.Logger) *smtp.Server {
	up := cfg.SMTP.Upstream.Config()
	up.Logger = log
	if tokens != nil {
		up.Tokens = tokens // a nil *oauth.Cache in the interface would not be nil
	}
	return &smtp.Server{
		Auth:           auth,
		Upstream:       up.SMTP(),
		Senders:        smtp.AliasesOf(st),
		CheckSender:    cfg.SMTP.SenderCheck(),
		DefaultDomain:  cfg.SMTP.DefaultDomain,
		Sessions:       reg,
		TLSConfig:      cfg.TLS.Config,
		AllowCleartext: cfg.SMTP.AllowCleartext,
		MFAMessage:     cfg.MFAText(),
		RelinkMessage:  proxy.RelinkText(cfg.Portal.URL),
		DeviceMessage:  proxy.DeviceRefusedText(cfg.Portal.URL),
		Limits:         frontEndLimits(cfg),
		Logger:         log,
	}
}
