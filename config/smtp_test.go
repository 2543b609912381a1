package config

import (
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy/upstream"
)

func TestSMTPSection(t *testing.T) {
	dir := fixture(t)
	smtpOnly := lines(
		`[smtp]`,
		`listen = "127.0.0.1:0"`,
		`allow_cleartext = true`,
		`[smtp.upstream]`,
		`address = "127.0.0.1:587"`,
		`login = "xclient"`,
	)
	c, err := Parse([]byte(smtpOnly), dir, nil)
	if err != nil {
		t.Fatalf("an SMTP-only config: %v", err)
	}
	if !c.SMTP.Enabled() || !c.SMTP.SenderCheck() || c.SMTP.Upstream.Login != upstream.ModeXCLIENT ||
		c.SMTP.Upstream.DialTimeout.Duration != upstream.DefaultDialTimeout {
		t.Errorf("parsed %+v; want enabled, sender check on by default, xclient, default timeouts", c.SMTP)
	}
	if c, err := Parse([]byte(base+lines(`[smtp]`, `check_sender = false`)), dir, nil); err != nil || c.SMTP.Enabled() || c.SMTP.SenderCheck() {
		t.Errorf("check_sender = false without listeners: err %v", err)
	}
	withSecret := strings.Replace(smtpOnly, `login = "xclient"`, `master_user = "proxy"`, 1)
	c, err = Parse([]byte(withSecret), dir, envMap(map[string]string{"PASSGATE_SMTP_UPSTREAM_MASTER_SECRET": "from-env"}))
	if err != nil || c.SMTP.Upstream.MasterSecret != "from-env" {
		t.Errorf("SMTP master secret from the environment: err %v", err)
	}

	for _, tc := range []struct {
		name, data, key string
	}{
		{"no listener at all", lines(`[log]`, `level = "info"`), "imap.listen"},
		{"xclient for imap", strings.Replace(base, `master_user = "proxy"`, `login = "xclient"`, 1), "imap.upstream.login"},
		{"smtp tls without cert", base + lines(`[smtp]`, `listen_tls = "127.0.0.1:0"`, `[smtp.upstream]`, `address = "127.0.0.1:587"`, `login = "xclient"`), "smtp.listen_tls"},
		{"smtp cleartext", base + lines(`[smtp]`, `listen = "127.0.0.1:0"`, `[smtp.upstream]`, `address = "127.0.0.1:587"`, `login = "xclient"`), "smtp.allow_cleartext"},
		{"smtp upstream address", base + lines(`[smtp]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`), "smtp.upstream.address"},
		{"smtp master secret", base + lines(`[smtp]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`, `[smtp.upstream]`, `address = "127.0.0.1:587"`, `master_user = "p"`), "smtp.upstream.master_secret"},
		{"smtp bad login", base + lines(`[smtp]`, `listen = "127.0.0.1:0"`, `allow_cleartext = true`, `[smtp.upstream]`, `address = "127.0.0.1:587"`, `login = "xclent"`), "smtp.upstream.login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), dir, nil)
			errorFor(t, err, tc.key)
		})
	}
}
