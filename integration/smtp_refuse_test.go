package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSMTPRefusals checks what a user's client shows when passgate (or the
// upstream, through passgate) refuses: the SMTP code, enhanced code and text
// as swaks and python smtplib report them, and that nothing reached the sink.
func TestSMTPRefusals(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	mfa := newAccount(t, d, g.Passgate, true)
	imapOnly := g.createAppPasswordScoped(t, mfa.User, "imap only", "imap")

	tests := []struct {
		name     string
		secret   string
		from     string
		code     string // reply code and enhanced code, e.g. "535 5.7.8"
		text     string // in the reply's text
		swaksRC  int    // swaks(1) exit code
		pyStage  string // where smtplib failed
		pyCode   int
		refusals int // of the account's failed logins
	}{
		{"wrong secret", "not the password", mfa.User, "535 5.7.8", "", 28, "auth", 535, 1},
		{"MFA account's primary password", mfa.Primary, mfa.User, "534 5.7.9", "Application password required: create one at " + portalURL, 28, "auth", 534, 1},
		{"app password without the smtp scope", imapOnly.Password, mfa.User, "535 5.7.8", "", 28, "auth", 535, 1},
		{"forged sender", mfa.AppPass, "ceo@example.org", "553 5.7.1", "", 23, "send", 553, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcpt := uniqueRcpt("refused")
			o := sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: mfa.User, Secret: tt.secret,
				From: tt.from, To: []string{rcpt}, File: writeMessage(t, smtpMessage(tt.from, rcpt, tt.name))}
			r := runSwaks(t, g, o)
			if r.Exit != tt.swaksRC || !r.saw(tt.code) || !strings.Contains(r.Transcript, tt.text) {
				t.Errorf("swaks: exit %d, want %d with %q and %q:\n%s", r.Exit, tt.swaksRC, tt.code, tt.text, r.Transcript)
			}
			o.Mech = "LOGIN"
			p := runPythonSMTP(t, g, o)
			enhanced := strings.Fields(tt.code)[1]
			if p.OK || p.Stage != tt.pyStage || p.Code != tt.pyCode || !strings.HasPrefix(p.Error, enhanced) || !strings.Contains(p.Error, tt.text) {
				t.Errorf("smtplib: %+v, want a failure at %s with %d %s %q", p, tt.pyStage, tt.pyCode, enhanced, tt.text)
			}
			if sink.sawRcpt(rcpt) {
				t.Errorf("the sink was asked to take a message for %s", rcpt)
			}
		})
	}

	t.Run("scope refusal is audited", func(t *testing.T) {
		if !hasLineWith(g.Output(), "msg=audit", "protocol=smtp", "user="+mfa.User, "result=scope-denied", "app_password_id="+imapOnly.ID) {
			t.Errorf("no audit line with the scope refusal in passgate's output")
		}
	})

	t.Run("alias added with the CLI may send", func(t *testing.T) {
		alias := "sales-" + strings.SplitN(mfa.User, "@", 2)[0] + "@example.org"
		g.run(t, "user", "alias", "add", mfa.User, alias)
		rcpt := uniqueRcpt("alias")
		msg := smtpMessage(alias, rcpt, "from an alias")
		o := sendOpts{Via: viaTLS, Mech: "LOGIN", User: mfa.User, Secret: mfa.AppPass,
			From: alias, To: []string{rcpt}, File: writeMessage(t, msg)}
		if r := runSwaks(t, g, o); r.Exit != 0 {
			t.Fatalf("swaks from the alias: exit %d:\n%s", r.Exit, r.Transcript)
		}
		checkRelayed(t, sink.take(t, rcpt), msg, alias, rcpt)
		// Another address of the domain is still refused.
		o.From = "other-" + alias
		if r := runSwaks(t, g, o); r.Exit != 23 || !r.saw("553 5.7.1") {
			t.Fatalf("swaks from an address that is no alias: exit %d, want 23 with 553 5.7.1:\n%s", r.Exit, r.Transcript)
		}
	})

	t.Run("upstream refuses a recipient", func(t *testing.T) {
		bad, good := uniqueRcpt("unknown"), uniqueRcpt("known")
		sink.rejectRcpt(bad)
		msg := smtpMessage(mfa.User, good, "one recipient refused")
		o := sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: mfa.User, Secret: mfa.AppPass,
			From: mfa.User, To: []string{bad}, File: writeMessage(t, msg)}
		// Only the refused recipient: swaks gives up (no RCPT accepted),
		// showing the sink's reply that Dovecot and passgate passed on.
		r := runSwaks(t, g, o)
		if r.Exit != 24 || !r.saw("550 5.1.1") || !strings.Contains(r.Transcript, sinkRejectText) {
			t.Errorf("swaks to a refused recipient: exit %d, want 24 with 550 5.1.1 %q:\n%s", r.Exit, sinkRejectText, r.Transcript)
		}
		p := runPythonSMTP(t, g, o)
		if ref, ok := p.Refused[bad]; p.OK || p.Stage != "send" || !ok || ref[0] != float64(550) || !strings.Contains(ref[1].(string), "5.1.1") || !strings.Contains(ref[1].(string), sinkRejectText) {
			t.Errorf("smtplib to a refused recipient: %+v, want SMTPRecipientsRefused with 550 5.1.1 %q", p, sinkRejectText)
		}
		// Both: the message goes to the other one, and the client learns
		// which was refused.
		o.To = []string{bad, good}
		p = runPythonSMTP(t, g, o)
		if ref, ok := p.Refused[bad]; !p.OK || len(p.Refused) != 1 || !ok || ref[0] != float64(550) {
			t.Errorf("smtplib to a refused and an accepted recipient: %+v, want success with %s refused (550)", p, bad)
		}
		checkRelayed(t, sink.take(t, good), msg, mfa.User, good)
	})
	t.Run("upstream refuses the message after DATA", func(t *testing.T) {
		rcpt := uniqueRcpt("toobig")
		sink.refuseMessagesTo(rcpt)
		o := sendOpts{Via: viaTLS, Mech: "PLAIN", User: mfa.User, Secret: mfa.AppPass,
			From: mfa.User, To: []string{rcpt}, File: writeMessage(t, bigMessage(mfa.User, rcpt, "too big", 1<<20))}
		r := runSwaks(t, g, o)
		if r.Exit != 26 || !r.saw("552 5.3.4") || !strings.Contains(r.Transcript, sinkTooBigText) {
			t.Errorf("swaks: exit %d, want 26 with 552 5.3.4 %q:\n%s", r.Exit, sinkTooBigText, r.Transcript)
		}
		p := runPythonSMTP(t, g, o)
		if p.OK || p.Stage != "send" || p.Code != 552 || !strings.HasPrefix(p.Error, "5.3.4") || !strings.Contains(p.Error, sinkTooBigText) {
			t.Errorf("smtplib: %+v, want SMTPDataError 552 5.3.4 %q", p, sinkTooBigText)
		}
		if n := sink.count(rcpt); n != 0 {
			t.Errorf("the sink holds %d refused messages", n)
		}
	})
	assertNoSecrets(t, g.Output(), mfa.AppPass, mfa.Primary, imapOnly.Password, masterSecret)
}

// createAppPasswordScoped creates an app password limited to scopes.
func (pg *Passgate) createAppPasswordScoped(t testing.TB, user, name, scopes string) appPassword {
	t.Helper()
	out := pg.run(t, "apppass", "create", user, "--name", name, "--scope", scopes, "--json")
	var p appPassword
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("apppass create --json: %v in %q", err, out)
	}
	if p.Name != name || p.Password == "" {
		t.Fatalf("apppass create --json: %+v, want name %q", p, name)
	}
	return p
}

// hasLineWith reports whether a line of text contains every one of parts.
func hasLineWith(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// TestSMTPSenderCheckOff checks check_sender = false: passgate leaves sender
// policy to the upstream (Dovecot's submission service has none here), so a
// sender that is neither the account nor an alias goes through.
func TestSMTPSenderCheckOff(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{SenderCheckOff: true})
	a := newAccount(t, d, g.Passgate, true)
	from, rcpt := "newsletter@example.com", uniqueRcpt("any-sender")
	msg := smtpMessage(from, rcpt, "any sender")
	r := runSwaks(t, g, sendOpts{Via: viaStartTLS, Mech: "LOGIN", User: a.User, Secret: a.AppPass,
		From: from, To: []string{rcpt}, File: writeMessage(t, msg)})
	if r.Exit != 0 {
		t.Fatalf("swaks from %s with check_sender = false: exit %d:\n%s", from, r.Exit, r.Transcript)
	}
	checkRelayed(t, sink.take(t, rcpt), msg, from, rcpt)
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}
