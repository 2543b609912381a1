package integration

import (
	"strings"
	"testing"
)

// TestSMTPUpstreamModes sends for real through each upstream login mode
// that Dovecot's submission service accepts (xclient is Postfix's; see
// TestSMTPXCLIENT), and checks in Dovecot's log and Received header how
// passgate logged in and whether the hop was encrypted.
func TestSMTPUpstreamModes(t *testing.T) {
	d, sink := sharedSink(t)
	tests := []struct {
		name   string
		opts   smtpOpts
		method string // in Dovecot's Login line
	}{
		{"master", smtpOpts{}, "PLAIN"},
		{"master over STARTTLS", smtpOpts{UpstreamTLS: "starttls"}, "PLAIN"},
		{"master with secret file", smtpOpts{SecretVia: "file"}, "PLAIN"},
		{"master with secret from env", smtpOpts{SecretVia: "env"}, "PLAIN"},
		{"login-master", smtpOpts{Login: "login-master"}, "LOGIN"},
		{"login-master over STARTTLS", smtpOpts{Login: "login-master", UpstreamTLS: "starttls"}, "LOGIN"},
		{"passthrough", smtpOpts{Login: "passthrough"}, "PLAIN"},
		{"passthrough over STARTTLS", smtpOpts{Login: "passthrough", UpstreamTLS: "starttls"}, "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startSMTPGate(t, d, tt.opts)
			a := newAccount(t, d, g.Passgate, false)
			secret := a.AppPass
			if tt.opts.Login == "passthrough" {
				secret = a.Primary // Dovecot knows only the primary password
			}
			rcpt := uniqueRcpt("mode")
			msg := smtpMessage(a.User, rcpt, "upstream "+tt.name)
			r := runPythonSMTP(t, g, sendOpts{Via: viaStartTLS, Mech: "LOGIN", User: a.User, Secret: secret,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, msg)})
			if !r.OK {
				t.Fatalf("smtplib through passgate: %+v", r)
			}
			received := checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)

			upstreamTLS := tt.opts.UpstreamTLS == "starttls"
			// RFC 3848: ESMTPA is authenticated, ESMTPSA authenticated
			// over TLS.
			if want := map[bool]string{false: "with ESMTPA", true: "with ESMTPSA"}[upstreamTLS]; !strings.Contains(received, want+"\r\n") {
				t.Errorf("Received header %q, want %q", received, want)
			}
			log := d.LogWhen("Successfully relayed message: from=<" + a.User + ">")
			master := strings.Contains(log, "Master user logging in as "+a.User)
			if wantMaster := tt.opts.Login != "passthrough"; master != wantMaster {
				t.Errorf("Dovecot logged a master-user login: %v, want %v", master, wantMaster)
			}
			login := loginLine(log, a.User)
			if !strings.Contains(login, "submission-login:") || !strings.Contains(login, "method="+tt.method+",") {
				t.Errorf("Dovecot's login line %q, want a submission login with method=%s", login, tt.method)
			}
			if tls := strings.Contains(login, ", TLS"); tls != upstreamTLS {
				t.Errorf("upstream login over TLS: %v, want %v: %s", tls, upstreamTLS, login)
			}
			if !strings.Contains(log, "submission("+a.User+")") || !strings.Contains(log, "Successfully relayed message: from=<"+a.User+">") {
				t.Errorf("Dovecot did not relay as %s", a.User)
			}
			assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
		})
	}
}

// TestSMTPUpstreamDown points passgate at a port where nothing listens: the
// client's AUTH gets 454 4.7.0 (temporary, so it retries later) and nothing
// is acknowledged.
func TestSMTPUpstreamDown(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{Upstream: addr(freePort(t))})
	a := newAccount(t, d, g.Passgate, true)
	rcpt := uniqueRcpt("down")
	o := sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: a.User, Secret: a.AppPass,
		From: a.User, To: []string{rcpt}, File: writeMessage(t, smtpMessage(a.User, rcpt, "upstream down"))}

	r := runSwaks(t, g, o)
	if r.Exit != 28 || !r.saw("454 4.7.0") || r.saw("235") || r.saw("250 2.0.0") {
		t.Errorf("swaks: exit %d, want 28 with 454 4.7.0 and no 235 or 250 to the message:\n%s", r.Exit, r.Transcript)
	}
	o.Mech = "LOGIN"
	if p := runPythonSMTP(t, g, o); p.OK || p.Stage != "auth" || p.Code != 454 || !strings.HasPrefix(p.Error, "4.7.0") {
		t.Errorf("smtplib: %+v, want AUTH refused with 454 4.7.0", p)
	}
	if out, err := runCurlSMTP(t, g, o); err == nil || !curlSaw(out, "454 4.7.0") {
		t.Errorf("curl: %v, want a failure after 454 4.7.0:\n%s", err, out)
	}
	if sink.sawRcpt(rcpt) {
		t.Errorf("the sink was asked to take a message")
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}
