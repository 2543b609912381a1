package smtp

import (
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy"
)

func plainIR(authzid, user, secret string) string {
	return "AUTH PLAIN " + b64(authzid+"\x00"+user+"\x00"+secret)
}

func TestAuthReplies(t *testing.T) {
	const portalMFA = "Application password required: create one at https://portal.example.org"
	for _, tc := range []struct {
		name       string
		cmd        string
		mfaMessage string
		wantCode   int
		wantText   string
		wantLog    string // in the log line of the attempt
		secret     string // must not be logged
	}{
		{"bad secret", plainIR("", appUser, "wrong-secret-1"), "", 535,
			"5.7.8 Authentication credentials invalid", "result=bad-secret", "wrong-secret-1"},
		{"unknown user", plainIR("", "nobody@example.org", "wrong-secret-2"), "", 535,
			"5.7.8 Authentication credentials invalid", "result=unknown-user", "wrong-secret-2"},
		{"scope denied", plainIR("", scopeUser, scopeSecret), "", 535,
			"5.7.8 Authentication credentials invalid", "result=scope-denied", scopeSecret},
		{"foreign authzid", plainIR("bob@example.org", appUser, appSecret), "", 535,
			"5.7.8 Authentication credentials invalid", "result=authzid-denied", appSecret},
		{"MFA primary password", plainIR("", mfaUser, mfaSecret), "", 534,
			"5.7.9 " + proxy.MFAText("", ""), "result=primary-refused-mfa", mfaSecret},
		{"MFA primary password, portal message", plainIR("", mfaUser, mfaSecret), portalMFA, 534,
			"5.7.9 " + portalMFA, "result=primary-refused-mfa", mfaSecret},
		{"Verify error", plainIR("", brokenUser, "some-secret-3"), "", 454,
			"4.7.0 Temporary authentication failure, try again later", "result=error", "some-secret-3"},
		{"Verify panic", plainIR("", panicUser, "some-secret-4"), "", 454,
			"4.7.0 Temporary authentication failure, try again later", "verify panicked", "some-secret-4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(s *Server) { s.MFAMessage = tc.mfaMessage })
			c := dialText(t, e.addr)
			c.transactWant("EHLO client.test", 250, "")
			c.transactWant(tc.cmd, tc.wantCode, tc.wantText)
			// Nothing is accepted after a failed AUTH.
			c.transactWant("MAIL FROM:<"+appUser+">", 530, "5.7.0 Authentication required")
			if n := e.sink.accepts.Load(); n != 1 { // the start-up probe only
				t.Errorf("upstream dialled %d times, want only the probe", n)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, tc.wantLog) {
				t.Errorf("logs lack %q:\n%s", tc.wantLog, logs)
			}
			if strings.Contains(logs, tc.secret) {
				t.Errorf("logs hold the secret:\n%s", logs)
			}
		})
	}
}

func TestAuthUpstreamDown(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { upstreamOf(s).Address = testtool.ClosedAddr(t) })
	c := dialText(t, e.addr)
	ehlo := c.transactWant("EHLO client.test", 250, "")
	if !strings.Contains(ehlo, "SIZE 52428800") {
		t.Errorf("EHLO with the upstream down at start: %q, want the default SIZE", ehlo)
	}
	c.transactWant(plainIR("", appUser, appSecret), 454, "4.7.0 Temporary authentication failure, try again later")
	if a := e.auth.lastAttempt(t); a.Username != appUser {
		t.Errorf("Verify not called for the login: %+v", a)
	}
	c.transactWant("MAIL FROM:<"+appUser+">", 530, "5.7.0 Authentication required")
	c.transactWant("RCPT TO:<bob@example.net>", 502, "")
	c.transactWant("DATA", 502, "")
	logs := e.logs.String()
	if !strings.Contains(logs, "result=upstream-error") || strings.Contains(logs, appSecret) {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestAuthTooManyFailures(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := dialText(t, e.addr)
	c.transactWant("EHLO client.test", 250, "")
	c.transactWant(plainIR("", appUser, "bad-1"), 535, "")
	c.transactWant(plainIR("", appUser, "bad-2"), 535, "")
	c.transactWant(plainIR("", appUser, "bad-3"), 421, "4.7.0 Too many failed login attempts, closing connection")
	c.expectClosed()
}

func TestAuthTranscripts(t *testing.T) {
	e := newEnv(t, nil, nil)
	t.Run("LOGIN prompts", func(t *testing.T) {
		c := dialText(t, e.addr)
		ehlo := c.transactWant("EHLO client.test", 250, "")
		if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
			t.Errorf("EHLO with cleartext allowed: %q", ehlo)
		}
		c.transactWant("AUTH LOGIN", 334, b64("Username:"))
		c.transactWant(b64(appUser), 334, b64("Password:"))
		c.transactWant(b64(appSecret), 235, "")
		c.transactWant("AUTH PLAIN", 503, "") // RFC 4954 §4: already authenticated
		c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	})
	t.Run("PLAIN without initial response", func(t *testing.T) {
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("AUTH PLAIN", 334, "")
		c.transactWant(b64("\x00"+appUser+"\x00"+appSecret), 235, "")
	})
	t.Run("cancelled", func(t *testing.T) {
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("AUTH LOGIN", 334, b64("Username:"))
		c.transactWant("*", 501, "")
		c.transactWant("MAIL FROM:<"+appUser+">", 530, "")
	})
	t.Run("MAIL before AUTH", func(t *testing.T) {
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("MAIL FROM:<"+appUser+">", 530, "5.7.0 Authentication required")
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("AUTH CRAM-MD5", 504, "")
	})
}
