package integration

import (
	"encoding/base64"
	"testing"
)

// TestSMTPAuthNeedsTLS checks what passgate offers before and after TLS:
// without allow_cleartext, EHLO on the submission port offers STARTTLS and
// no AUTH (RFC 4954 §4, RFC 8314 §3), AUTH there is refused, and MAIL
// before AUTH gets 530 5.7.0 (RFC 4954 §6); after STARTTLS, and on the
// implicit TLS port, AUTH PLAIN and LOGIN are offered and work.
func TestSMTPAuthNeedsTLS(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	a := newAccount(t, d, g.Passgate, true)
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+a.User+"\x00"+a.AppPass))

	t.Run("cleartext", func(t *testing.T) {
		c := dialSMTP(t, g.SubmitAddr)
		ehlo := c.transact("EHLO raw.client.test")
		if ehlo.Code != 250 || !ehlo.has("STARTTLS") || ehlo.has("AUTH") {
			t.Fatalf("EHLO before TLS: %s, want STARTTLS and no AUTH", ehlo)
		}
		if r := c.transact(plain); r.Code/100 != 5 {
			t.Fatalf("AUTH before TLS: %s, want a 5xx refusal", r)
		}
		if r := c.transact("MAIL FROM:<" + a.User + ">"); r.Code != 530 || !r.has("5.7.0") {
			t.Fatalf("MAIL before AUTH: %s, want 530 5.7.0", r)
		}
		c.quit()
	})
	t.Run("STARTTLS then AUTH", func(t *testing.T) {
		c := dialSMTP(t, g.SubmitAddr)
		c.transact("EHLO raw.client.test")
		c.startTLS(g.tlsConfig(t))
		ehlo := c.transact("EHLO raw.client.test")
		if ehlo.Code != 250 || !ehlo.has("AUTH PLAIN LOGIN") && !ehlo.has("AUTH LOGIN PLAIN") || ehlo.has("STARTTLS") {
			t.Fatalf("EHLO after STARTTLS: %s, want AUTH PLAIN LOGIN and no STARTTLS", ehlo)
		}
		if r := c.transact("MAIL FROM:<" + a.User + ">"); r.Code != 530 || !r.has("5.7.0") {
			t.Fatalf("MAIL before AUTH: %s, want 530 5.7.0", r)
		}
		if r := c.transact(plain); r.Code != 235 {
			t.Fatalf("AUTH PLAIN after STARTTLS: %s, want 235", r)
		}
		if r := c.transact("MAIL FROM:<" + a.User + ">"); r.Code != 250 {
			t.Fatalf("MAIL after AUTH: %s, want 250", r)
		}
		c.quit()
	})
	t.Run("implicit TLS", func(t *testing.T) {
		c := dialSMTPTLS(t, g.SubmitsAddr, g.tlsConfig(t))
		ehlo := c.transact("EHLO raw.client.test")
		if ehlo.Code != 250 || !ehlo.has("AUTH") || ehlo.has("STARTTLS") {
			t.Fatalf("EHLO on the implicit TLS port: %s, want AUTH and no STARTTLS", ehlo)
		}
		if r := c.transact(plain); r.Code != 235 {
			t.Fatalf("AUTH PLAIN over TLS: %s, want 235", r)
		}
		c.quit()
	})
	t.Run("swaks without TLS", func(t *testing.T) {
		rcpt := uniqueRcpt("cleartext")
		r := runSwaks(t, g, sendOpts{Via: viaPlain, Mech: "LOGIN", User: a.User, Secret: a.AppPass,
			From: a.User, To: []string{rcpt}, File: writeMessage(t, smtpMessage(a.User, rcpt, "no TLS"))})
		if r.Exit != 28 {
			t.Fatalf("swaks AUTH without TLS: exit %d, want 28 (AUTH not offered):\n%s", r.Exit, r.Transcript)
		}
		if sink.sawRcpt(rcpt) {
			t.Fatalf("the sink was asked to take a message sent without TLS")
		}
	})
	t.Run("swaks verifies the certificate", func(t *testing.T) {
		// The tests' swaks runs verify passgate's certificate: with
		// another CA (Dovecot's self-signed one) the handshake fails.
		rcpt := uniqueRcpt("wrong-ca")
		for _, via := range []string{viaStartTLS, viaTLS} {
			r := runSwaks(t, g, sendOpts{Via: via, Mech: "PLAIN", User: a.User, Secret: a.AppPass, CAFile: d.CertFile,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, smtpMessage(a.User, rcpt, "wrong CA"))})
			if r.Exit != 29 && r.Exit != 2 {
				t.Errorf("swaks (%s) trusting another CA: exit %d, want a TLS failure (29, or 2 for implicit TLS):\n%s", via, r.Exit, r.Transcript)
			}
		}
	})
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}

// TestSMTPAllowCleartext checks that allow_cleartext offers AUTH before TLS,
// and that a client then sends without TLS.
func TestSMTPAllowCleartext(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{AllowCleartext: true})
	a := newAccount(t, d, g.Passgate, false)

	c := dialSMTP(t, g.SubmitAddr)
	if ehlo := c.transact("EHLO raw.client.test"); ehlo.Code != 250 || !ehlo.has("AUTH") || !ehlo.has("STARTTLS") {
		t.Fatalf("EHLO before TLS with allow_cleartext: %s, want AUTH and STARTTLS", ehlo)
	}
	c.quit()
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run("swaks "+mech, func(t *testing.T) {
			rcpt := uniqueRcpt("cleartext")
			msg := smtpMessage(a.User, rcpt, "cleartext "+mech)
			r := runSwaks(t, g, sendOpts{Via: viaPlain, Mech: mech, User: a.User, Secret: a.AppPass,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, msg)})
			if r.Exit != 0 {
				t.Fatalf("swaks AUTH %s without TLS: exit %d:\n%s", mech, r.Exit, r.Transcript)
			}
			checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
		})
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}
