package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"
)

// smtpOpts are what a test changes in passgate's [smtp] section. The zero
// value relays to the Dovecot's submission port in cleartext, logging in as
// the master user, refuses AUTH before TLS and checks the sender.
type smtpOpts struct {
	AllowCleartext bool
	// SenderCheckOff sets check_sender = false.
	SenderCheckOff bool
	// Upstream is the submission address passgate relays to; empty means
	// the Dovecot's submission port.
	Upstream string
	// UpstreamTLS is "none" (zero) or "starttls" (Dovecot's submission
	// port offers STARTTLS, not implicit TLS).
	UpstreamTLS string
	// Login is the upstream login mode; empty means "master".
	Login string
	// SecretVia says how the master secret reaches passgate: "" (inline),
	// "file" (master_secret_file) or "env"
	// (PASSGATE_SMTP_UPSTREAM_MASTER_SECRET).
	SecretVia string
	// Passgate are the options of the rest of the configuration.
	Passgate passgateOpts
	// Notify is the [notify] section; none when its From is empty.
	Notify notifyOpts
}

// notifyOpts are passgate's [notify] keys that a test sets. Mail goes
// through [smtp.upstream], as in production.
type notifyOpts struct {
	From     string
	Language string // "": passgate's default (English)
	// MaxPerHour: zero is passgate's default.
	MaxPerHour int
}

const smtpConf = `
[smtp]
listen = "{{.Submit}}"
listen_tls = "{{.Submits}}"
allow_cleartext = {{.AllowCleartext}}
check_sender = {{not .SenderCheckOff}}

[smtp.upstream]
address = "{{.Upstream}}"
tls = "{{.UpstreamTLS}}"
{{- if ne .UpstreamTLS "none"}}
ca_file = "{{.CAFile}}"
server_name = "localhost"
{{- end}}
login = "{{.Login}}"
{{- if or (eq .Login "master") (eq .Login "login-master")}}
master_user = "{{.MasterUser}}"
{{- if eq .SecretVia ""}}
master_secret = "{{.MasterSecret}}"
{{- else if eq .SecretVia "file"}}
master_secret_file = "{{.SecretFile}}"
{{- end}}
{{- end}}
{{- with .Notify}}{{if .From}}

[notify]
from = "{{.From}}"
{{- with .Language}}
language = "{{.}}"
{{- end}}
{{- with .MaxPerHour}}
max_per_hour = {{.}}
{{- end}}
{{- end}}{{end}}
`

// smtpGate is a passgate serving SMTP (and IMAP, as every harness passgate
// does) in front of a Dovecot.
type smtpGate struct {
	*Passgate
	SubmitAddr  string // submission: STARTTLS (and AUTH in cleartext if allowed)
	SubmitsAddr string // submissions: implicit TLS
}

// newSMTPGate writes a configuration with an [smtp] section in front of d's
// submission service; serve is not started.
func newSMTPGate(t testing.TB, d *Dovecot, o smtpOpts) *smtpGate {
	t.Helper()
	pg := newPassgate(t, d, o.Passgate)
	g := &smtpGate{Passgate: pg, SubmitAddr: addr(freePort(t)), SubmitsAddr: addr(freePort(t))}
	if o.Upstream == "" {
		o.Upstream = d.SubmitAddr
	}
	if o.UpstreamTLS == "" {
		o.UpstreamTLS = "none"
	}
	if o.Login == "" {
		o.Login = "master"
	}
	secretFile := filepath.Join(pg.Dir, "smtp-master-secret")
	switch o.SecretVia {
	case "file":
		if err := os.WriteFile(secretFile, []byte(masterSecret+"\n"), 0o600); err != nil {
			t.Fatalf("smtp master secret file: %v", err)
		}
	case "env":
		pg.env = append(pg.env, "PASSGATE_SMTP_UPSTREAM_MASTER_SECRET="+masterSecret)
	}
	var conf bytes.Buffer
	err := template.Must(template.New("smtp").Parse(smtpConf)).Execute(&conf, map[string]any{
		"Submit": g.SubmitAddr, "Submits": g.SubmitsAddr, "AllowCleartext": o.AllowCleartext,
		"SenderCheckOff": o.SenderCheckOff, "Upstream": o.Upstream, "UpstreamTLS": o.UpstreamTLS,
		"CAFile": d.CertFile, "Login": o.Login, "MasterUser": masterUser, "MasterSecret": masterSecret,
		"SecretVia": o.SecretVia, "SecretFile": secretFile, "Notify": o.Notify,
	})
	if err != nil {
		t.Fatalf("smtp config: %v", err)
	}
	base, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatalf("smtp config: %v", err)
	}
	if err := os.WriteFile(pg.ConfFile, append(base, conf.Bytes()...), 0o600); err != nil {
		t.Fatalf("smtp config: %v", err)
	}
	return g
}

// startSMTPGate writes the configuration and starts serve, returning once
// both SMTP listeners greet.
func startSMTPGate(t testing.TB, d *Dovecot, o smtpOpts) *smtpGate {
	t.Helper()
	g := newSMTPGate(t, d, o)
	g.start(t)
	return g
}

// start starts serve and returns once both SMTP listeners greet.
func (g *smtpGate) start(t testing.TB) {
	t.Helper()
	g.serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var preamble []byte
	if g.ProxiedSMTP {
		preamble = proxyLocalHeader(t)
	}
	if err := waitGreetingAfter(ctx, g.SubmitAddr, preamble, "220 ", g.done); err != nil {
		t.Fatalf("passgate smtp: %v", err)
	}
	c := dialSMTPTLS(t, g.SubmitsAddr, g.tlsConfig(t))
	c.quit()
}
