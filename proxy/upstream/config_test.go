package upstream

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestLogValueHidesSecret: whatever form of the upstream reaches a log, the
// line names its address and never the master secret.
func TestLogValueHidesSecret(t *testing.T) {
	cfg := Config{Address: "mail.internal:143", MasterUser: "proxy", MasterSecret: masterSecret}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "config", cfg, "pointer", &cfg, "imap", cfg.IMAP(), "smtp", cfg.SMTP(), "imapValue", *cfg.IMAP())
	if out := buf.String(); strings.Contains(out, "s3cret") || strings.Count(out, "mail.internal:143") != 5 {
		t.Errorf("log line %s", out)
	}
}

// TestValidatePerProtocol: one Config, validated for each protocol that
// uses it; every problem names its configuration field.
func TestValidatePerProtocol(t *testing.T) {
	xclient := Config{Address: "127.0.0.1:25", Mode: ModeXCLIENT}
	if err := xclient.SMTP().Validate(); err != nil {
		t.Errorf("SMTP xclient: %v", err)
	}
	err := xclient.IMAP().Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "login" || !strings.Contains(fe.Msg, "IMAP") || !errors.Is(err, ErrInvalid) {
		t.Errorf("IMAP xclient: %v", err)
	}
	bad := Config{Address: "nowhere", Mode: ModeLoginMaster, Separator: "."}
	var fields []string
	for _, p := range bad.problems(imapProtocol) {
		fields = append(fields, p.Field)
	}
	if got := strings.Join(fields, " "); got != "address master_user master_secret master_separator" {
		t.Errorf("problems name %q", got)
	}
}

func TestTLSClientConfig(t *testing.T) {
	own := &tls.Config{ServerName: "imap.example.org", MinVersion: tls.VersionTLS13}
	for _, tc := range []struct {
		name       string
		cfg        Config
		serverName string
		min        uint16
	}{
		{"default", Config{Address: "mail.internal:993", TLS: TLSImplicit}, "mail.internal", tls.VersionTLS12},
		{"own config kept", Config{Address: "mail.internal:993", TLS: TLSStartTLS, TLSConfig: own}, "imap.example.org", tls.VersionTLS13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.TLSClientConfig()
			if err != nil || got.ServerName != tc.serverName || got.MinVersion != tc.min {
				t.Errorf("TLSClientConfig = %+v, %v", got, err)
			}
		})
	}
	if got, err := (&Config{Address: "x:1"}).TLSClientConfig(); got != nil || err != nil {
		t.Errorf("TLSNone: %v, %v", got, err)
	}
}
