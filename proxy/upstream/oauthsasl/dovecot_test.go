package oauthsasl_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/proxy/upstream/oauthsasl"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

// oauthDovecot is a real Dovecot that takes tokens of a test IdP, and a
// token cache over a Google-style service account at that IdP.
type oauthDovecot struct {
	idp   *testidp.IdP
	srv   *testdovecot.Server
	cache *oauth.Cache
}

func startOAuthDovecot(t testing.TB) *oauthDovecot {
	t.Helper()
	idp := testidp.Start(t)
	idp.AddUser(alice, bob)
	var pw testdovecot.Passwd
	pw.Set(alice, "alice-pw", "")
	pw.Set(bob, "bob-pw", "")
	srv := testdovecot.Start(t, pw.String(), testdovecot.WithOAuth(testdovecot.OAuth{
		Issuer: idp.Issuer(), KeyID: idp.KeyID(), PublicKeyPEM: idp.PublicKeyPEM(), Clients: []string{"1001"},
	}))
	sa, err := oauth.NewServiceAccount(idp.NewServiceAccount(t, "pg@test.iam.example", "1001"), oauth.GoogleMailScopes...)
	if err != nil {
		t.Fatal(err)
	}
	return &oauthDovecot{idp: idp, srv: srv, cache: &oauth.Cache{Source: sa}}
}

func (d *oauthDovecot) token(t testing.TB, user string) string {
	t.Helper()
	tok, err := d.cache.Token(t.Context(), user)
	if err != nil {
		t.Fatalf("token for %s: %v", user, err)
	}
	return tok
}

// imapConn is a raw IMAP connection over implicit TLS, so that the test
// sees the exact exchange (the SASL-IR, the error challenge, the empty
// answer) that passgate's upstream login will write.
type imapConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialIMAP(t testing.TB, d *oauthDovecot) *imapConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: testcert.Pool(t, d.srv.CertFile), ServerName: "localhost"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", d.srv.IMAPSAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &imapConn{t: t, c: c, r: bufio.NewReader(c)}
	if g := ic.line(); !strings.HasPrefix(g, "* OK") || !strings.Contains(g, "SASL-IR") ||
		!strings.Contains(g, "AUTH=XOAUTH2") || !strings.Contains(g, "AUTH=OAUTHBEARER") {
		t.Fatalf("greeting %q lacks SASL-IR, AUTH=XOAUTH2 or AUTH=OAUTHBEARER", g)
	}
	return ic
}

func (ic *imapConn) line() string {
	ic.t.Helper()
	ic.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := ic.r.ReadString('\n')
	if err != nil {
		ic.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (ic *imapConn) send(s string) {
	ic.t.Helper()
	if _, err := ic.c.Write([]byte(s + "\r\n")); err != nil {
		ic.t.Fatal(err)
	}
}

// authenticate runs AUTHENTICATE with the initial response inline (RFC
// 4959) and answers challenges with c, as RFC 3501 §6.2.2 says: base64
// lines, an empty response as an empty line. It returns the tagged reply
// and the challenges the server sent.
func (ic *imapConn) authenticate(c sasl.Client) (reply string, challenges int) {
	ic.t.Helper()
	mech, ir, err := c.Start()
	if err != nil {
		ic.t.Fatal(err)
	}
	ic.tag++
	tag := "a" + strconv.Itoa(ic.tag)
	ic.send(tag + " AUTHENTICATE " + mech + " " + base64.StdEncoding.EncodeToString(ir))
	for {
		l := ic.line()
		if strings.HasPrefix(l, tag+" ") {
			return strings.TrimPrefix(l, tag+" "), challenges
		}
		ch, ok := strings.CutPrefix(l, "+ ")
		if !ok {
			continue // untagged
		}
		challenges++
		challenge, err := base64.StdEncoding.DecodeString(ch)
		if err != nil {
			ic.t.Fatalf("challenge %q: %v", ch, err)
		}
		resp, err := c.Next(challenge)
		if err != nil {
			ic.send("*")
			continue
		}
		ic.send(base64.StdEncoding.EncodeToString(resp))
	}
}

func (ic *imapConn) command(cmd string) string {
	ic.t.Helper()
	ic.tag++
	tag := "a" + strconv.Itoa(ic.tag)
	ic.send(tag + " " + cmd)
	for {
		if l := ic.line(); strings.HasPrefix(l, tag+" ") {
			return strings.TrimPrefix(l, tag+" ")
		}
	}
}

func TestDovecotAcceptsTheTokenWithBothMechanisms(t *testing.T) {
	d := startOAuthDovecot(t)
	host, port := hostPort(t, d.srv.IMAPSAddr)
	for name, c := range map[string]*oauthsasl.Client{
		"xoauth2":     oauthsasl.NewXOAuth2(alice, d.token(t, alice)),
		"oauthbearer": oauthsasl.NewOAuthBearer(alice, d.token(t, alice), host, port),
	} {
		t.Run(name, func(t *testing.T) {
			ic := dialIMAP(t, d)
			if reply, n := ic.authenticate(c); !strings.HasPrefix(reply, "OK") || n != 0 || c.Failure() != nil {
				t.Fatalf("AUTHENTICATE: %q after %d challenges (%v)", reply, n, c.Failure())
			}
			if reply := ic.command("SELECT INBOX"); !strings.HasPrefix(reply, "OK") {
				t.Fatalf("SELECT INBOX: %q", reply)
			}
		})
	}
	if n := d.idp.TokenRequests(""); n != 1 {
		t.Errorf("%d token requests for two logins of one user, want 1", n)
	}
}

// Dovecot's refusals, as the upstream login will meet them: the error
// challenge is answered, the login fails, and the verdict is right.
func TestDovecotRefusesOtherUsersAndExpiredTokens(t *testing.T) {
	d := startOAuthDovecot(t)
	host, port := hostPort(t, d.srv.IMAPSAddr)
	expired := d.idp.Mint("1001", alice, "https://mail.google.com/", time.Now().Add(-2*time.Hour), time.Hour)
	for _, tc := range []struct {
		name, token string
		want        oauthsasl.Verdict
	}{
		{"bob's token", d.token(t, bob), oauthsasl.Retry},
		{"expired token", expired, oauthsasl.Retry},
		{"garbage", "not-a-jwt", oauthsasl.Retry},
	} {
		for _, c := range []*oauthsasl.Client{
			oauthsasl.NewXOAuth2(alice, tc.token),
			oauthsasl.NewOAuthBearer(alice, tc.token, host, port),
		} {
			t.Run(tc.name+" "+c.String(), func(t *testing.T) {
				ic := dialIMAP(t, d)
				reply, n := ic.authenticate(c)
				if !strings.HasPrefix(reply, "NO") || n != 1 {
					t.Fatalf("AUTHENTICATE: %q after %d challenges; want NO after one", reply, n)
				}
				f := c.Failure()
				if f == nil || oauthsasl.Classify(f) != tc.want {
					t.Fatalf("failure %v, verdict %v; want %v", f, oauthsasl.Classify(f), tc.want)
				}
				t.Logf("Dovecot: challenge %s, then %q", f, reply)
				// The connection is still usable: the exchange ended cleanly.
				if reply := ic.command("NOOP"); !strings.HasPrefix(reply, "OK") {
					t.Errorf("NOOP after the refusal: %q", reply)
				}
			})
		}
	}
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.IP.String(), a.Port
}

// The flow the upstream login follows: a token the server refuses as
// invalid (here: expired by the server's clock while the cache still
// trusts it) is invalidated, fetched again once, and the login retried.
func TestRetryAfterRefreshLogsIn(t *testing.T) {
	d := startOAuthDovecot(t)
	d.idp.SetNow(func() time.Time { return time.Now().Add(-2 * time.Hour) }) // its tokens are born expired
	stale := d.token(t, alice)
	d.idp.SetNow(time.Now)

	ic := dialIMAP(t, d)
	c := oauthsasl.NewXOAuth2(alice, stale)
	if reply, _ := ic.authenticate(c); !strings.HasPrefix(reply, "NO") || oauthsasl.Classify(c.Failure()) != oauthsasl.Retry {
		t.Fatalf("stale token: %q, %v; want NO with a retry verdict", reply, c.Failure())
	}
	d.cache.Invalidate(alice, stale)
	c = oauthsasl.NewXOAuth2(alice, d.token(t, alice))
	if reply, _ := ic.authenticate(c); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("after one refresh: %q (%v)", reply, c.Failure())
	}
	if n := d.idp.TokenRequests(""); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

// The OAuth option leaves PLAIN to the passwd-file.
func TestDovecotStillTakesPasswordsWithPlain(t *testing.T) {
	d := startOAuthDovecot(t)
	ic := dialIMAP(t, d)
	if reply, _ := ic.authenticate(sasl.NewPlainClient("", alice, "alice-pw")); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("PLAIN: %q", reply)
	}
}
