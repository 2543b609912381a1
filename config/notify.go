package config

import (
	"net/mail"
	"net/url"
	"strings"

	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/proxy/upstream"
)

// Notify configures the notifications to accounts' owners (package
// notify): by mail through smtp.upstream, and to a webhook.
type Notify struct {
	// Enabled turns notifications on or off. Unset: on when From or
	// WebhookURL is set.
	Enabled *bool `toml:"enabled"`
	// From is the sender of notification mail, e.g.
	// "passgate@example.org". Empty: no mail. Mail goes through
	// smtp.upstream, so the [smtp] front end must be configured, with a
	// login mode that needs no user's password (not passthrough).
	From string `toml:"from"`
	// LoginAs is the upstream account notifications are submitted as.
	// Empty: each owner's own account.
	LoginAs string `toml:"login_as"`
	// WebhookURL receives a signed JSON POST per notification. Empty:
	// none.
	WebhookURL string `toml:"webhook_url"`
	// WebhookSecret keys the webhook's HMAC-SHA256 signature; required
	// with WebhookURL. After Parse it holds the effective secret, from this
	// key, WebhookSecretFile or PASSGATE_NOTIFY_WEBHOOK_SECRET. Never
	// printed.
	WebhookSecret     string `toml:"webhook_secret"`
	WebhookSecretFile string `toml:"webhook_secret_file"`
	// Language is the language of an account that chose none: "en"
	// (default) or "fr".
	Language string `toml:"language"`
	// MaxPerHour caps the notifications of one account per hour, of
	// device events (first use, drift, refused) and of account changes
	// each. Zero: notify.DefaultMaxPerHour (10); negative: no cap.
	MaxPerHour int `toml:"max_per_hour"`
	// Queue bounds the notifications waiting for delivery. Zero:
	// notify.DefaultQueueSize.
	Queue int `toml:"queue"`
}

// On reports whether notifications are sent.
func (n *Notify) On() bool {
	if n.Enabled != nil {
		return *n.Enabled
	}
	return n.From != "" || n.WebhookURL != ""
}

// notify validates n against the SMTP front end it mails through.
func (l *loader) notify(n *Notify, s *SMTP) {
	n.WebhookSecret, _, _ = l.secret("notify.webhook_secret", n.WebhookSecret,
		"notify.webhook_secret_file", n.WebhookSecretFile, []string{"PASSGATE_NOTIFY_WEBHOOK_SECRET"})
	if n.Language != "" && !notify.Supported(n.Language) {
		l.fail("notify.language", nil, "%q is not one of %s", n.Language, strings.Join(notify.Languages, ", "))
	}
	if n.MaxPerHour < -1 {
		l.fail("notify.max_per_hour", nil, "%d: give a count, 0 for the default or -1 for no cap", n.MaxPerHour)
	}
	if n.Queue < 0 {
		l.fail("notify.queue", nil, "%d is negative", n.Queue)
	}
	if !n.On() {
		return
	}
	if n.From == "" && n.WebhookURL == "" {
		l.fail("notify.enabled", nil, "notifications need notify.from (mail) or notify.webhook_url")
	}
	if n.From != "" {
		l.notifyMail(n, s)
	}
	if n.WebhookURL != "" {
		// The URL may carry a password (user:pass@): the error shows it redacted.
		switch u, err := url.Parse(n.WebhookURL); {
		case err != nil:
			l.fail("notify.webhook_url", nil, "not a URL")
		case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			l.fail("notify.webhook_url", nil, "%q is not an http or https URL", u.Redacted())
		}
		if n.WebhookSecret == "" {
			l.fail("notify.webhook_secret", nil, "required with notify.webhook_url: receivers check the signature with it")
		}
	}
}

// notifyMail checks the sender and the upstream mail goes through.
func (l *loader) notifyMail(n *Notify, s *SMTP) {
	if a, err := mail.ParseAddress(n.From); err != nil || a.Address != n.From || !strings.Contains(n.From, "@") {
		l.fail("notify.from", nil, "%q is not a bare mail address such as passgate@example.org", n.From)
	}
	if !s.Enabled() {
		l.fail("notify.from", nil, "mail notifications go through smtp.upstream: configure the [smtp] front end, or use only notify.webhook_url")
		return
	}
	if s.Upstream.Login == upstream.ModePassthrough {
		l.fail("notify.from", nil, "smtp.upstream.login passthrough cannot send notifications (passgate knows no user's password): use master, login-master or xclient")
	}
}
