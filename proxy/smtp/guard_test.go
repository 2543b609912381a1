package smtp

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/store/memcount"
)

// guarded puts an authn.Guard (no delays) in front of the env's fakeAuth;
// audit, if not nil, receives the audit records.
func guarded(l authn.Limits, audit *syncBuffer) func(*Server) {
	return func(s *Server) {
		g := &authn.Guard{Verifier: s.Auth, Counters: &memcount.Counters{}, Limits: l,
			Sleep: func(context.Context, time.Duration) error { return nil }}
		if audit != nil {
			g.Audit = &authn.Auditor{Log: slog.New(slog.NewTextHandler(audit, nil))}
		}
		s.Auth = g
	}
}

func TestRateLimitedReply(t *testing.T) {
	const rateLimited = "4.7.0 Too many failed logins, try again later"
	e := newEnv(t, nil, func(s *Server) {
		s.Limits.MaxFailedLogins = 4
		guarded(authn.Limits{MaxPerAddress: 2}, nil)(s)
	})
	c := dialText(t, e.addr)
	c.transactWant("EHLO client.test", 250, "")
	c.transactWant(plainIR("", appUser, "wrong-1"), 535, "5.7.8 Authentication credentials invalid")
	c.transactWant(plainIR("", appUser, "wrong-2"), 535, "5.7.8 Authentication credentials invalid")
	// The right secret from the blocked address is refused, unverified,
	// with a temporary failure (RFC 4954 §6).
	verified := len(e.auth.attempts)
	c.transactWant(plainIR("", appUser, appSecret), 454, rateLimited)
	// It counts toward MaxFailedLogins: the fourth failure closes.
	c.transactWant("AUTH LOGIN "+b64(appUser), 334, b64("Password:"))
	c.transactWant(b64(appSecret), 421, "4.7.0 Too many failed login attempts, closing connection")
	c.expectClosed()

	c = dialText(t, e.addr)
	c.transactWant("EHLO client.test", 250, "")
	c.transactWant(plainIR("", appUser, appSecret), 454, rateLimited)
	c.transactWant("MAIL FROM:<"+appUser+">", 530, "")
	e.auth.mu.Lock()
	n := len(e.auth.attempts) - verified
	e.auth.mu.Unlock()
	if n != 0 {
		t.Errorf("refused logins reached the verifier %d times", n)
	}
	if n := e.sink.accepts.Load(); n != 1 {
		t.Errorf("upstream dialled %d times, want only the probe", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "result=rate-limited") || strings.Contains(logs, appSecret) {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestAttemptCarriesTLSAndSession(t *testing.T) {
	cfg, pool := testCert(t)
	reg := &sessions.Registry{}
	e := newEnv(t, nil, func(s *Server) {
		s.TLSConfig = cfg
		s.Sessions = reg
	})
	tlsAddr := startPassgate(t, e.pg, true)
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	wrong := sasl.NewPlainClient("", appUser, "wrong")

	// Cleartext: no TLS version.
	c := dial(t, e.addr)
	c.Auth(wrong)
	plain := e.auth.lastAttempt(t)
	if plain.TLS != "" || plain.SessionID == "" || plain.Client != "" {
		t.Errorf("cleartext attempt: TLS %q, session %q, client %q", plain.TLS, plain.SessionID, plain.Client)
	}

	// STARTTLS: the same connection, the same session id, now with TLS.
	c2 := &badConn{textConn: dialText(t, e.addr), pool: pool}
	c2.transactWant("EHLO client.test", 250, "")
	c2.transactWant(plainIR("", appUser, "wrong"), 535, "")
	before := e.auth.lastAttempt(t)
	c2.startTLS()
	c2.transactWant("EHLO client.test", 250, "")
	c2.transactWant(plainIR("", appUser, "wrong"), 535, "")
	after := e.auth.lastAttempt(t)
	if before.TLS != "" || after.TLS != "TLS 1.3" || after.SessionID != before.SessionID || after.SessionID == plain.SessionID {
		t.Errorf("STARTTLS: attempts before %q/%q, after %q/%q (other connection %q)",
			before.TLS, before.SessionID, after.TLS, after.SessionID, plain.SessionID)
	}

	// Implicit TLS, and a login that relays a message.
	tc, err := tls.Dial("tcp", tlsAddr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	c3 := gosmtp.NewClient(tc)
	defer c3.Close()
	if err := c3.Auth(sasl.NewPlainClient("", appUser, appSecret)); err != nil {
		t.Fatal(err)
	}
	ok := e.auth.lastAttempt(t)
	if ok.TLS != "TLS 1.3" || ok.SessionID == "" || ok.SessionID == after.SessionID {
		t.Errorf("implicit TLS attempt: TLS %q, session %q", ok.TLS, ok.SessionID)
	}
	if ss := reg.Sessions(); len(ss) != 1 || ss[0].ID != ok.SessionID {
		t.Errorf("registered sessions %+v, want one with id %q", ss, ok.SessionID)
	}
	if err := send(c3, strings.NewReader(testMsg), "bob@example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c3.Quit(); err != nil {
		t.Fatal(err)
	}

	// Every log line of a session carries its id.
	local := tc.LocalAddr().String()
	var lines int
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(l, "remote="+local) {
			continue
		}
		lines++
		if !strings.Contains(l, "session="+ok.SessionID) {
			t.Errorf("log line without the session id %q: %s", ok.SessionID, l)
		}
	}
	if lines < 2 { // the AUTH and the message
		t.Errorf("%d log lines for the session, want the AUTH and the message:\n%s", lines, e.logs.String())
	}
}

// auditSpy is an Authenticator that audits like authn.Guard: it records
// the upstream errors it is told about.
type auditSpy struct {
	*fakeAuth
	upstreamErrors chan authn.Attempt
}

func (a auditSpy) AuditUpstreamError(_ context.Context, at authn.Attempt, d authn.Decision) {
	if d.Result != authn.OK || d.Username != appUser {
		panic("AuditUpstreamError after a refusal")
	}
	a.upstreamErrors <- at
}

func TestAuditUpstreamError(t *testing.T) {
	t.Run("interface", func(t *testing.T) {
		spy := auditSpy{&fakeAuth{}, make(chan authn.Attempt, 4)}
		e := newEnv(t, nil, func(s *Server) {
			s.Auth = spy
			upstreamOf(s).Address = testtool.ClosedAddr(t)
		})
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant(plainIR("", appUser, "wrong"), 535, "")
		c.transactWant(plainIR("", appUser, appSecret), 454, "4.7.0 Temporary authentication failure, try again later")
		if n := len(spy.upstreamErrors); n != 1 {
			t.Fatalf("%d upstream errors audited, want 1", n)
		}
		got, want := <-spy.upstreamErrors, spy.lastAttempt(t)
		if got != want {
			t.Errorf("audited attempt %+v, want the verified one %+v", got, want)
		}
	})
	t.Run("authn.Guard", func(t *testing.T) {
		audit := &syncBuffer{}
		e := newEnv(t, nil, func(s *Server) {
			guarded(authn.Limits{}, audit)(s)
			upstreamOf(s).Address = testtool.ClosedAddr(t)
		})
		c := dialText(t, e.addr)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant(plainIR("", appUser, appSecret), 454, "")
		a := e.auth.lastAttempt(t)
		var records []string
		for _, l := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
			if strings.Contains(l, "session="+a.SessionID) && strings.Contains(l, "mechanism=PLAIN") {
				records = append(records, l)
			}
		}
		if len(records) != 2 || !strings.Contains(records[0], "result=ok") || !strings.Contains(records[1], "result=upstream-error") {
			t.Errorf("audit records of the session: %q, want ok then upstream-error\n%s", records, audit.String())
		}
		if strings.Contains(audit.String(), appSecret) {
			t.Errorf("the audit log holds the secret:\n%s", audit.String())
		}
	})
}
