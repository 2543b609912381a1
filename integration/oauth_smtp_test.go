package integration

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream"
)

// passgate's SMTP front end in process, in front of Dovecot's submission
// service that takes only OAuth 2.0 tokens for the user's login and relays
// to a sink of the test's; the rest (IdP, delegated tokens, app password)
// is the IMAP gate's.

type oauthSMTPGate struct {
	*oauthGate
	sink     *smtpSink
	smtpAddr string // passgate's plain submission listener
}

func startOAuthSMTPGate(t testing.TB, mode upstream.Mode) *oauthSMTPGate {
	t.Helper()
	sink := startSink(t, "127.0.0.1:0")
	g := &oauthSMTPGate{oauthGate: startOAuthGate(t, mode, testdovecot.WithSubmission(sink.Addr)), sink: sink}
	quiet := slog.New(slog.DiscardHandler)
	up := &upstream.SMTP{Address: g.dove.SubmitAddr, TLS: upstream.TLSStartTLS, Mode: mode, Tokens: g.cache,
		TLSConfig: &tls.Config{RootCAs: testcert.Pool(t, g.dove.CertFile), ServerName: "localhost"}, Logger: quiet}
	srv := &smtp.Server{
		Auth:           g.auth,
		Upstream:       up,
		Sessions:       g.reg,
		CheckSender:    true,
		AllowCleartext: true,
		RelinkMessage:  proxy.RelinkText(oauthPortal),
		Hostname:       "passgate.test",
		Logger:         quiet,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.smtpAddr = ln.Addr().String()
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	t.Cleanup(func() { srv.Close(); <-served })
	return g
}

// submit authenticates to passgate with the app password (AUTH PLAIN) and
// sends msg to rcpt; it returns AUTH's error, if any.
func (g *oauthSMTPGate) submit(t testing.TB, rcpt string, msg []byte) error {
	t.Helper()
	c, err := gosmtp.Dial(g.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = ioTimeout, ioTimeout
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", oauthUser, g.secret)); err != nil {
		return err
	}
	if err := c.SendMail(oauthUser, []string{rcpt}, bytes.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
	return nil
}

// dovecotLogins counts Dovecot's submission logins by method.
func dovecotLogins(d *testdovecot.Server, method string) int {
	n := 0
	for _, l := range strings.Split(d.Log(), "\n") {
		if strings.Contains(l, "submission-login: Info: Login: user=<"+oauthUser+">") &&
			strings.Contains(l, "method="+method+",") {
			n++
		}
	}
	return n
}

// A client sends with its app password; passgate logs in to Dovecot's
// submission with the user's token, and the sink gets the client's bytes
// unchanged behind Dovecot's Received header. A second message reuses the
// cached token.
func TestOAuthUpstreamSMTPSends(t *testing.T) {
	for _, mode := range oauthModes {
		t.Run(string(mode), func(t *testing.T) {
			g := startOAuthSMTPGate(t, mode)
			for i := range 2 {
				rcpt := uniqueRcpt("oauth-smtp")
				msg := smtpMessage(oauthUser, rcpt, "through "+string(mode))
				if err := g.submit(t, rcpt, msg); err != nil {
					t.Fatalf("AUTH %d: %v", i+1, err)
				}
				checkRelayed(t, g.sink.take(t, rcpt), msg, oauthUser, rcpt)
			}
			mech := strings.ToUpper(string(mode))
			if n := dovecotLogins(g.dove, mech); n != 2 {
				t.Errorf("Dovecot logged %d submission logins with %s, want 2", n, mech)
			}
			if n := g.idp.TokenRequests(""); n != 1 {
				t.Errorf("%d token requests for two sessions, want 1 (the cached token)", n)
			}
		})
	}
}

// A token the cache still trusts but Dovecot refuses as expired (error
// challenge) is replaced once within the login, and the message goes out.
func TestOAuthUpstreamSMTPRefusedTokenRefreshedOnce(t *testing.T) {
	for _, mode := range oauthModes {
		t.Run(string(mode), func(t *testing.T) {
			g := startOAuthSMTPGate(t, mode)
			// A token born expired (the IdP's clock two hours behind).
			g.idp.SetNow(func() time.Time { return time.Now().Add(-2 * time.Hour) })
			stale := mustToken(t, g.cache)
			g.idp.SetNow(time.Now)
			before := g.idp.TokenRequests(testidp.GrantRefreshToken)

			rcpt := uniqueRcpt("oauth-smtp-stale")
			msg := smtpMessage(oauthUser, rcpt, "after a refused token")
			if err := g.submit(t, rcpt, msg); err != nil {
				t.Fatalf("AUTH with a token the server calls expired: %v", err)
			}
			checkRelayed(t, g.sink.take(t, rcpt), msg, oauthUser, rcpt)
			if n := g.idp.TokenRequests(testidp.GrantRefreshToken) - before; n != 1 {
				t.Errorf("%d refreshes after the server refused the token, want 1", n)
			}
			if tok := mustToken(t, g.cache); tok == stale {
				t.Error("the refused token is still cached")
			}
			mech := strings.ToUpper(string(mode))
			if n := dovecotLogins(g.dove, mech); n != 1 {
				t.Errorf("Dovecot logged %d submission logins with %s, want 1", n, mech)
			}
		})
	}
}

// The user revoked passgate's access at the provider: the next AUTH that
// needs a token answers 535 with the portal's URL, and nothing is relayed.
func TestOAuthUpstreamSMTPRevokedAsksToRelink(t *testing.T) {
	g := startOAuthSMTPGate(t, upstream.ModeXOAuth2)
	g.idp.RevokeUser(oauthUser)
	rcpt := uniqueRcpt("oauth-smtp-revoked")
	err := g.submit(t, rcpt, smtpMessage(oauthUser, rcpt, "never sent"))
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 8}) ||
		!strings.Contains(se.Message, oauthPortal) {
		t.Fatalf("AUTH after the revocation: %v, want 535 5.7.8 with %s", err, oauthPortal)
	}
	if _, err := g.links.RefreshToken(t.Context(), oauthUser); err == nil {
		t.Error("the refused refresh token is still stored")
	}
	if n := g.sink.count(rcpt); n != 0 {
		t.Errorf("the sink got %d messages after a refused AUTH", n)
	}
}
