package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/passgate/passgate/authn"
	accountsvc "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/store/bolt"
)

// passgate in process (a real Verifier on bolt, the IMAP front end) in
// front of a real Dovecot that takes only OAuth 2.0 tokens for the user's
// login, signed by a test IdP; passgate's tokens come from delegated mode
// (the user's refresh token, as linked in the portal).

const (
	oauthUser     = "alice@example.com"
	oauthClientID = "passgate"
	oauthPortal   = "https://mail.example.org/app-passwords"
)

type oauthGate struct {
	idp    *testidp.IdP
	dove   *testdovecot.Server
	cache  *oauth.Cache
	links  *memLinks
	up     *upstream.IMAP
	addr   string // passgate's plain IMAP listener
	secret string // alice's app password
	auth   *authn.Verifier
	reg    *sessions.Registry
}

// startOAuthGate starts the IdP, Dovecot (with dopts added to WithOAuth)
// and passgate's IMAP front end.
func startOAuthGate(t testing.TB, mode upstream.Mode, dopts ...testdovecot.Option) *oauthGate {
	t.Helper()
	g := &oauthGate{idp: testidp.Start(t), links: &memLinks{tokens: map[string]string{}}}
	g.idp.AddUser(oauthUser)
	g.idp.AddClient(oauthClientID, "client-secret")
	var pw testdovecot.Passwd
	pw.Set(oauthUser, "primary-not-used", "")
	g.dove = testdovecot.Start(t, pw.String(), append(dopts, testdovecot.WithOAuth(testdovecot.OAuth{
		Issuer: g.idp.Issuer(), KeyID: g.idp.KeyID(), PublicKeyPEM: g.idp.PublicKeyPEM(), Clients: []string{oauthClientID},
	}))...)
	scope := strings.Join(oauth.MicrosoftUserScopes, " ")
	g.links.tokens[oauthUser] = g.idp.Link(oauthClientID, oauthUser, scope)
	g.cache = &oauth.Cache{Source: &oauth.Delegated{Store: g.links, Config: &oauth2.Config{
		ClientID: oauthClientID, ClientSecret: "client-secret", Scopes: oauth.MicrosoftUserScopes,
		Endpoint: oauth2.Endpoint{TokenURL: g.idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
	}}}

	quiet := slog.New(slog.DiscardHandler)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := &authn.Verifier{Store: db, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}}
	accounts := &accountsvc.Service{Store: db, Verifier: v, Logger: quiet}
	ctx := context.Background()
	if err := accounts.CreateUser(ctx, testActor, accountsvc.NewUser{Username: oauthUser}); err != nil {
		t.Fatal(err)
	}
	np, err := accounts.CreateAppPassword(ctx, testActor, oauthUser, "laptop", accountsvc.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.secret = np.Password

	reg := &sessions.Registry{Store: db, Cache: &authn.Cache{}, RecheckInterval: time.Hour, Logger: quiet}
	g.auth, g.reg = v, reg
	wctx, cancel := context.WithCancel(ctx)
	watched, err := reg.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	g.up = &upstream.IMAP{Address: g.dove.IMAPSAddr, TLS: upstream.TLSImplicit, Mode: mode, Tokens: g.cache,
		TLSConfig: &tls.Config{RootCAs: testcert.Pool(t, g.dove.CertFile), ServerName: "localhost"}, Logger: quiet}
	srv := &imap.Server{
		Auth:           v,
		Upstream:       g.up,
		Sessions:       reg,
		AllowCleartext: true,
		RelinkMessage:  proxy.RelinkText(oauthPortal),
		Logger:         quiet,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	t.Cleanup(func() { srv.Close(); <-served; cancel(); <-watched })
	return g
}

// session logs in to passgate with the app password and returns the
// tagged answer and the connection (closed when the test ends).
func (g *oauthGate) session(t testing.TB) (string, *imapClient) {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &imapClient{t: t, c: c, r: bufio.NewReader(c)}
	ic.line() // greeting
	return ic.cmd("LOGIN " + quote(oauthUser) + " " + quote(g.secret)), ic
}

type imapClient struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func (ic *imapClient) line() string {
	ic.t.Helper()
	ic.c.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := ic.r.ReadString('\n')
	if err != nil {
		ic.t.Fatalf("read: %v (%q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns its tagged answer; untagged lines go to
// ic.untagged.
func (ic *imapClient) cmd(command string) string {
	ic.t.Helper()
	ic.tag++
	tag := fmt.Sprintf("c%d", ic.tag)
	fmt.Fprintf(ic.c, "%s %s\r\n", tag, command)
	for {
		l := ic.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return rest
		}
	}
}

// memLinks is the delegated mode's refresh token store (the portal's
// MailboxLinks in passgate serve), in memory.
type memLinks struct {
	mu     sync.Mutex
	tokens map[string]string
}

func (m *memLinks) RefreshToken(_ context.Context, user string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rt, ok := m.tokens[user]; ok {
		return rt, nil
	}
	return "", oauth.ErrNotLinked
}

func (m *memLinks) SwapRefreshToken(_ context.Context, user, old, new string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens[user] == old {
		if new == "" {
			delete(m.tokens, user)
		} else {
			m.tokens[user] = new
		}
	}
	return nil
}

var oauthModes = []upstream.Mode{upstream.ModeXOAuth2, upstream.ModeOAuthBearer}

// A client logs in with its app password and reads a mail it stored,
// through a Dovecot that accepted passgate's token; a second login reuses
// the cached token.
func TestOAuthUpstreamReadsMail(t *testing.T) {
	for _, mode := range oauthModes {
		t.Run(string(mode), func(t *testing.T) {
			g := startOAuthGate(t, mode)
			reply, ic := g.session(t)
			if !strings.HasPrefix(reply, "OK") {
				t.Fatalf("LOGIN: %q", reply)
			}
			msg := "From: alice@example.com\r\nSubject: through " + string(mode) + "\r\n\r\nhello\r\n"
			fmt.Fprintf(ic.c, "c0 APPEND INBOX {%d}\r\n", len(msg))
			if l := ic.line(); !strings.HasPrefix(l, "+") {
				t.Fatalf("APPEND: %q", l)
			}
			fmt.Fprintf(ic.c, "%s\r\n", msg)
			for l := ic.line(); !strings.HasPrefix(l, "c0 "); l = ic.line() {
			}
			ic.cmd("SELECT INBOX")
			fmt.Fprintf(ic.c, "f1 FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]\r\n")
			var got string
			for l := ic.line(); !strings.HasPrefix(l, "f1 "); l = ic.line() {
				got += l + "\n"
			}
			if !strings.Contains(got, "Subject: through "+string(mode)) {
				t.Fatalf("FETCH: %q, want the stored mail", got)
			}
			if reply, _ := g.session(t); !strings.HasPrefix(reply, "OK") {
				t.Fatalf("second LOGIN: %q", reply)
			}
			if n := g.idp.TokenRequests(""); n != 1 {
				t.Errorf("%d token requests for two logins, want 1 (the cached token)", n)
			}
			if strings.Contains(g.dove.Log(), "passdb(alice@example.com): Unknown user") {
				t.Errorf("Dovecot tried a password: %s", g.dove.Log())
			}
		})
	}
}

// The token expires between two logins: the second login fetches one new
// token (the cache's clock), and a token the cache still trusts but the
// server refuses as expired is replaced once within the login.
func TestOAuthUpstreamTokenExpires(t *testing.T) {
	for _, mode := range oauthModes {
		t.Run(string(mode), func(t *testing.T) {
			g := startOAuthGate(t, mode)
			if reply, _ := g.session(t); !strings.HasPrefix(reply, "OK") {
				t.Fatalf("first LOGIN: %q", reply)
			}
			later := time.Now().Add(2 * time.Hour) // past the token's hour
			g.cache.Now = func() time.Time { return later }
			if reply, _ := g.session(t); !strings.HasPrefix(reply, "OK") {
				t.Fatalf("LOGIN after expiry: %q", reply)
			}
			if n := g.idp.TokenRequests(testidp.GrantRefreshToken); n != 2 {
				t.Errorf("%d refreshes for two logins an expiry apart, want 2", n)
			}

			// A token born expired (the IdP's clock two hours behind) that
			// the cache keeps: Dovecot refuses it, passgate refreshes once.
			g.cache.Now = nil
			g.cache.Invalidate(oauthUser, mustToken(t, g.cache))
			g.idp.SetNow(func() time.Time { return time.Now().Add(-2 * time.Hour) })
			stale := mustToken(t, g.cache)
			g.idp.SetNow(time.Now)
			before := g.idp.TokenRequests(testidp.GrantRefreshToken)
			if reply, _ := g.session(t); !strings.HasPrefix(reply, "OK") {
				t.Fatalf("LOGIN with a token the server calls expired: %q", reply)
			}
			if n := g.idp.TokenRequests(testidp.GrantRefreshToken) - before; n != 1 {
				t.Errorf("%d refreshes after the server refused the token, want 1", n)
			}
			if tok := mustToken(t, g.cache); tok == stale {
				t.Error("the refused token is still cached")
			}
		})
	}
}

func mustToken(t testing.TB, c *oauth.Cache) string {
	t.Helper()
	tok, err := c.Token(context.Background(), oauthUser)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The user revoked passgate's access at the provider: the next login that
// needs a token answers NO [ALERT] with the portal's URL.
func TestOAuthUpstreamRevokedAsksToRelink(t *testing.T) {
	g := startOAuthGate(t, upstream.ModeXOAuth2)
	if reply, _ := g.session(t); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("LOGIN: %q", reply)
	}
	g.idp.RevokeUser(oauthUser)
	later := time.Now().Add(2 * time.Hour)
	g.cache.Now = func() time.Time { return later }
	reply, _ := g.session(t)
	if !strings.HasPrefix(reply, "NO [ALERT] ") || !strings.Contains(reply, oauthPortal) {
		t.Fatalf("LOGIN after the revocation: %q, want NO [ALERT] with %s", reply, oauthPortal)
	}
	if _, err := g.links.RefreshToken(context.Background(), oauthUser); err == nil {
		t.Error("the refused refresh token is still stored")
	}
}

// 50 concurrent logins of one user with no token cached cause one token
// request.
func TestOAuthUpstreamConcurrentLoginsOneToken(t *testing.T) {
	g := startOAuthGate(t, upstream.ModeOAuthBearer)
	const n = 50
	replies := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, ic := g.session(goroutineTB{t})
			ic.cmd("LOGOUT")
			replies <- reply
		}()
	}
	wg.Wait()
	close(replies)
	for reply := range replies {
		if !strings.HasPrefix(reply, "OK") {
			t.Errorf("LOGIN: %q", reply)
		}
	}
	if got := g.idp.TokenRequests(""); got != 1 {
		t.Errorf("%d token requests for %d concurrent logins, want 1", got, n)
	}
}

// goroutineTB lets test helpers run in a goroutine other than the test's:
// Fatal and Fatalf report the failure and end that goroutine only
// (testing.T's FailNow must be called from the test's own goroutine).
type goroutineTB struct{ testing.TB }

func (g goroutineTB) Fatal(args ...any) {
	g.TB.Helper()
	g.TB.Error(args...)
	runtime.Goexit()
}

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

// BenchmarkOAuthUpstreamLogin is the cost of passgate's upstream login
// (TLS, AUTHENTICATE, Dovecot's JWT check) in each mode, with the token
// cached and with a refresh at the IdP before each login.
func BenchmarkOAuthUpstreamLogin(b *testing.B) {
	for _, mode := range oauthModes {
		g := startOAuthGate(b, mode)
		for _, refresh := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/refresh=%v", mode, refresh), func(b *testing.B) {
				for b.Loop() {
					if refresh {
						g.cache.Invalidate(oauthUser, mustToken(b, g.cache))
					}
					c, err := g.up.Login(context.Background(), upstream.Login{Username: oauthUser})
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
				}
			})
		}
	}
}
