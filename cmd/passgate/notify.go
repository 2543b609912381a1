package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// notifyDrain bounds the wait for queued notifications at shutdown.
const notifyDrain = 10 * time.Second

// startNotifier tells owners what happens to their credentials, if
// [notify] is on: the guard's auditor and the account service hand it
// their records. The returned function stops it, delivering what is
// queued within notifyDrain.
func startNotifier(cfg *config.Config, c *core, tokens *oauth.Cache, log *slog.Logger) func() {
	nc := cfg.Notify
	if !nc.On() {
		return func() {}
	}
	n := &notify.Notifier{
		Accounts: c.st, Counters: c.guard.Counters, MaxPerHour: nc.MaxPerHour,
		Language: nc.Language, PortalURL: cfg.Portal.URL, QueueSize: nc.Queue, Logger: log,
	}
	if nc.From != "" {
		up := cfg.SMTP.Upstream.Config()
		up.Logger = log
		if tokens != nil {
			up.Tokens = tokens
		}
		n.Mail = &notify.Mail{Upstream: up.SMTP(), From: nc.From, LoginAs: nc.LoginAs}
		n.Address = smtp.AliasesOf(c.st).Primary(cfg.SMTP.DefaultDomain)
	}
	if nc.WebhookURL != "" {
		n.Webhook = &notify.Webhook{URL: nc.WebhookURL, Secret: []byte(nc.WebhookSecret)}
	}
	if c.metrics != nil {
		n.Metrics = c.metrics
	}
	n.Start()
	c.accounts.Notify = n
	if c.guard.Audit != nil {
		c.guard.Audit.Notify = n
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), notifyDrain)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			log.Warn("notifications not delivered at shutdown", "err", err)
		}
	}
}
