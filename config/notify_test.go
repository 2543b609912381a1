package config

import (
	"strings"
	"testing"
)

// smtpBase adds the SMTP front end that mail notifications go through.
var smtpBase = base + lines(`[smtp]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`,
	`[smtp.upstream]`, `address = "127.0.0.1:587"`, `master_user = "proxy"`, `master_secret = "s3cret"`)

func TestNotifyKeys(t *testing.T) {
	c, err := Parse([]byte(smtpBase+lines(`[notify]`, `from = "passgate@example.org"`, `language = "fr"`,
		`webhook_url = "https://ops.example.org/hook"`, `webhook_secret = "k"`, `max_per_hour = 3`)), "/etc/pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Notify; !n.On() || n.From != "passgate@example.org" || n.Language != "fr" || n.MaxPerHour != 3 || n.WebhookSecret != "k" {
		t.Errorf("notify %+v", n)
	}
	c, err = Parse([]byte(smtpBase+lines(`[notify]`, `enabled = false`, `from = "passgate@example.org"`)), "/etc/pg", nil)
	if err != nil || c.Notify.On() {
		t.Errorf("enabled = false: on %v, err %v", c != nil && c.Notify.On(), err)
	}
	if c, _ := Parse([]byte(base), "/etc/pg", nil); c.Notify.On() {
		t.Error("notifications on without a [notify] section")
	}
	for _, tc := range []struct{ cfg, keys, key, want string }{
		{smtpBase, `enabled = true`, "notify.enabled", "notify.from"},
		{smtpBase, `from = "not an address"`, "notify.from", "bare mail address"},
		{smtpBase, `from = "Passgate <p@example.org>"`, "notify.from", "bare mail address"},
		{base, `from = "p@example.org"`, "notify.from", "[smtp]"},
		{strings.Replace(smtpBase, `master_user = "proxy"`+"\n"+`master_secret = "s3cret"`, `login = "passthrough"`, 2), `from = "p@example.org"`, "notify.from", "passthrough"},
		{smtpBase, `webhook_url = "ftp://x"`, "notify.webhook_url", "http"},
		{smtpBase, `webhook_url = "ftp://ops:hunter2@x"`, "notify.webhook_url", "ops:xxxxx@x"},
		{smtpBase, `webhook_url = "https://ops.example.org/"`, "notify.webhook_secret", "required"},
		{smtpBase, `language = "de"`, "notify.language", "en, fr"},
		{smtpBase, `max_per_hour = -5`, "notify.max_per_hour", "-1"},
	} {
		_, err := Parse([]byte(tc.cfg+lines(`[notify]`, tc.keys)), "/etc/pg", nil)
		if err == nil || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %s naming %q", tc.keys, err, tc.key, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the URL's password: %v", tc.keys, err)
		}
	}
}
