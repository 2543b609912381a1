package main

import (
	"context"
	"errors"
	"fmt"
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
		Senders:        aliasesOf(st),
		CheckSender:    cfg.SMTP.SenderCheck(),
		Sessions:       reg,
		TLSConfig:      cfg.TLS.Config,
		AllowCleartext: cfg.SMTP.AllowCleartext,
		MFAMessage:     cfg.MFAText(),
		Limits:         frontEndLimits(cfg),
		Logger:         log,
	}
}

// aliasesOf returns the sender addresses an account may use besides its
// username: its aliases in the store.
func aliasesOf(st store.Store) smtp.Senders {
	return func(ctx context.Context, username string) ([]string, error) {
		a, err := st.GetAccount(ctx, username)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("aliases of %s: %w", username, err)
		}
		return a.Aliases, nil
	}
}
