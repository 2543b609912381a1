package integration

import (
	"strings"
	"testing"
)

// TestSMTPXCLIENT sends through passgate's xclient mode to a private
// Postfix (smtpd_authorized_xclient_hosts = 127.0.0.0/8), which queues the
// message and relays it to the sink: Postfix must have taken the session as
// the user (XCLIENT LOGIN=, shown by smtpd_sasl_authenticated_header) from
// the client's address (XCLIENT ADDR=).
func TestSMTPXCLIENT(t *testing.T) {
	requirePostfix(t)
	d, sink := sharedSink(t)
	p := startPostfix(t, sink.Addr)
	g := startSMTPGate(t, d, smtpOpts{Upstream: p.SMTPAddr, Login: "xclient"})
	a := newAccount(t, d, g.Passgate, true)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run("swaks "+mech, func(t *testing.T) {
			rcpt := uniqueRcpt("xclient")
			msg := smtpMessage(a.User, rcpt, "through Postfix with "+mech)
			r := runSwaks(t, g, sendOpts{Via: viaStartTLS, Mech: mech, User: a.User, Secret: a.AppPass,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, msg), Src: "127.0.0.3"})
			if r.Exit != 0 {
				t.Fatalf("swaks: exit %d:\n%s", r.Exit, r.Transcript)
			}
			received := checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
			for _, want := range []string{"(Authenticated sender: " + a.User + ")", "[127.0.0.3]", "by postfix.test (Postfix)"} {
				if !strings.Contains(received, want) {
					t.Errorf("Postfix's Received header lacks %q:\n%s", want, received)
				}
			}
		})
	}
	t.Run("wrong secret never reaches Postfix", func(t *testing.T) {
		rcpt := uniqueRcpt("xclient")
		r := runSwaks(t, g, sendOpts{Via: viaTLS, Mech: "PLAIN", User: a.User, Secret: "wrong secret",
			From: a.User, To: []string{rcpt}, File: writeMessage(t, smtpMessage(a.User, rcpt, "no"))})
		if r.Exit != 28 || !r.saw("535 5.7.8") {
			t.Fatalf("swaks: exit %d, want 28 with 535 5.7.8:\n%s", r.Exit, r.Transcript)
		}
	})
	if log := p.Log(); strings.Count(log, "sasl_username="+a.User) != 2 {
		t.Errorf("Postfix logged %d sessions as %s, want 2:\n%s", strings.Count(log, "sasl_username="+a.User), a.User, log)
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}
