package integration

import (
	"strings"
	"testing"
)

// TestSMTPSend sends with an app password through passgate, in front of
// Dovecot's submission service (master-user login), with every real client
// and way of connecting: the sink Dovecot relays to must hold the client's
// bytes unchanged behind Dovecot's Received header.
func TestSMTPSend(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	a := newAccount(t, d, g.Passgate, true)

	type sender func(t *testing.T, o sendOpts)
	swaks := func(t *testing.T, o sendOpts) {
		if r := runSwaks(t, g, o); r.Exit != 0 {
			t.Fatalf("swaks exit %d:\n%s", r.Exit, r.Transcript)
		}
	}
	python := func(t *testing.T, o sendOpts) {
		if r := runPythonSMTP(t, g, o); !r.OK || len(r.Refused) != 0 {
			t.Fatalf("smtplib: %+v", r)
		}
	}
	curl := func(t *testing.T, o sendOpts) {
		if out, err := runCurlSMTP(t, g, o); err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
	}
	tests := []struct {
		name string
		send sender
		via  string
		mech string
	}{
		{"swaks STARTTLS AUTH PLAIN", swaks, viaStartTLS, "PLAIN"},
		{"swaks STARTTLS AUTH LOGIN", swaks, viaStartTLS, "LOGIN"},
		{"swaks implicit TLS AUTH PLAIN", swaks, viaTLS, "PLAIN"},
		{"swaks implicit TLS AUTH LOGIN", swaks, viaTLS, "LOGIN"},
		{"python STARTTLS login", python, viaStartTLS, "LOGIN"},
		{"python STARTTLS AUTH PLAIN", python, viaStartTLS, "PLAIN"},
		{"python SMTP_SSL AUTH LOGIN", python, viaTLS, "LOGIN"},
		{"curl smtp STARTTLS AUTH PLAIN", curl, viaStartTLS, "PLAIN"},
		{"curl smtps AUTH LOGIN", curl, viaTLS, "LOGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcpt := uniqueRcpt("send")
			msg := smtpMessage(a.User, rcpt, tt.name)
			tt.send(t, sendOpts{Via: tt.via, Mech: tt.mech, User: a.User, Secret: a.AppPass,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, msg)})
			checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
		})
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}

// TestSMTPLargeMessage sends 10 MiB with curl and with smtplib; the sink
// must get every byte.
func TestSMTPLargeMessage(t *testing.T) {
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	a := newAccount(t, d, g.Passgate, false)

	for _, client := range []string{"curl", "python"} {
		t.Run(client, func(t *testing.T) {
			rcpt := uniqueRcpt("big")
			msg := bigMessage(a.User, rcpt, "10 MiB by "+client, 10<<20)
			o := sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: a.User, Secret: a.AppPass,
				From: a.User, To: []string{rcpt}, File: writeMessage(t, msg)}
			switch client {
			case "curl":
				if out, err := runCurlSMTP(t, g, o); err != nil {
					t.Fatalf("curl: %v\n%s", err, tail(out, 2000))
				}
			case "python":
				r := runPythonSMTP(t, g, o)
				if !r.OK {
					t.Fatalf("smtplib: %+v", r)
				}
				if !hasPrefixIn(r.EHLO, "SIZE ") {
					t.Errorf("EHLO after STARTTLS offers %q, want SIZE", r.EHLO)
				}
			}
			checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
		})
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}

func hasPrefixIn(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
