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
	u := cfg.SMTP.Upstream
	return &smtp.Server{
		Auth: auth,
		Upstream: &smtp.Upstream{
			Address:      u.Address,
			TLS:          string(u.TLS),
			TLSConfig:    u.TLSConfig,
			Mode:         string(u.Login),
			MasterUser:   u.MasterUser,
			MasterSecret: u.MasterSecret,
			Separator:    u.MasterSeparator,
			// DialTimeout bounds the whole upstream login: connect, TLS, AUTH.
			DialTimeout: u.DialTimeout.Duration + u.LoginTimeout.Duration,
		},
		Senders:        smtp.AliasesOf(st),
		CheckSender:    cfg.SMTP.SenderCheck(),
		Sessions:       reg,
		TLSConfig:      cfg.TLS.Config,
		AllowCleartext: cfg.SMTP.AllowCleartext,
		MFAMessage:     cfg.MFAText(),
		Limits:         frontEndLimits(cfg),
		Logger:         log,
	}
}
