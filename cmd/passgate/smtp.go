package main

import (
	"log/slog"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/store"
)

// newSMTPServer builds the submission front end of cfg.SMTP.
func newSMTPServer(cfg *config.Config, auth proxy.Authenticator, st store.Store, reg proxy.Sessions, log *slog.Logger) *smtp.Server {
	up := cfg.SMTP.Upstream.Config()
	up.Logger = log
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
		Limits:         frontEndLimits(cfg),
		Logger:         log,
	}
}
