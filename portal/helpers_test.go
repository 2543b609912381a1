package portal

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
)

// cheap argon2id parameters for tests.
var testParams = authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}

var testKey = bytes.Repeat([]byte{0x42}, 32)

// testActor makes the changes that set tests up.
var testActor = account.Actor{Door: account.DoorCLI, Name: "test"}

// unaudited keeps no audit records.
type unaudited struct{ account.Store }

func (unaudited) AppendAudit(context.Context, store.AuditRecord) error { return nil }

// clock is a settable time source shared by the server, the verifier and
// the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a portal on a real listener with a bolt store, whose Auth is
// an authn.Guard (as in passgate serve) with in-memory counters, the audit
// in the store, and a tarpit that does not wait.
type fixture struct {
	t     *testing.T
	db    *bolt.DB
	v     *authn.Verifier
	guard *authn.Guard
	srv   *Server
	ts    *httptest.Server
	clock *clock
	log   *testlog.Buffer
}

const (
	alicePW = "alice primary password"
	bobPW   = "bob primary password"
	adminPW = "admin primary password"
)

// newFixture starts a portal; configure, if not nil, adjusts the Server
// before it starts.
func newFixture(t *testing.T, configure func(*Server)) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log, logs := testlog.New(slog.LevelDebug)
	v := &authn.Verifier{Store: db, Params: testParams, Now: clk.Now, Logger: log}
	f := &fixture{t: t, db: db, v: v, clock: clk, log: logs}
	f.guard = &authn.Guard{Verifier: v, Counters: &memcount.Counters{Now: clk.Now},
		Audit: &authn.Auditor{Store: db, Logger: log}, Now: clk.Now, Logger: log,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	f.srv = &Server{Store: db, Auth: f.guard, Verifier: v, Key: testKey, Issuer: "passgate-test", Now: clk.Now, Logger: log,
		Mail: MailSettings{IMAPHost: "imap.example.org", SMTPHost: "smtp.example.org", SMTPPort: 587, SMTPSecurity: SecuritySTARTTLS}}
	f.ts = httptest.NewUnstartedServer(nil)
	f.srv.BaseURL = "http://" + f.ts.Listener.Addr().String()
	if configure != nil {
		configure(f.srv)
	}
	f.ts.Config.Handler = f.srv.Handler()
	f.ts.Start()
	t.Cleanup(f.ts.Close)
	return f
}

// setup is an account service to arrange a test's accounts with. It keeps
// no audit records, so that a test reads only those of what it does.
func (f *fixture) setup() *account.Service {
	return &account.Service{Store: unaudited{f.db}, Verifier: f.v, Logger: slog.New(slog.DiscardHandler), Now: f.clock.Now}
}

// account creates an account with a primary password.
func (f *fixture) account(user, pw string, mfa bool) {
	f.t.Helper()
	if err := f.setup().CreateUser(context.Background(), testActor, account.NewUser{Username: user, Password: pw, MFA: mfa}); err != nil {
		f.t.Fatal(err)
	}
}

// update changes an account directly in the store.
func (f *fixture) update(user string, fn func(*store.Account)) {
	f.t.Helper()
	err := f.db.UpdateAccount(context.Background(), user, func(a *store.Account) error { fn(a); return nil })
	if err != nil {
		f.t.Fatal(err)
	}
}

// enrolDirect gives user an enrolled authenticator with a known secret and
// recovery codes, as if enrolment had happened.
func (f *fixture) enrolDirect(user string) (secret string, codes []string) {
	f.t.Helper()
	k, err := f.srv.newTOTPSecret(user)
	if err != nil {
		f.t.Fatal(err)
	}
	codes, kept, err := f.v.NewRecoveryCodes(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	sealed, err := f.srv.seal("totp", user, []byte(k.Secret()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.update(user, func(a *store.Account) {
		a.MFA = true
		a.TOTP = &store.TOTP{SecretEnc: sealed, Enrolled: f.clock.Now(), Recovery: kept}
	})
	return k.Secret(), codes
}

// code is the TOTP code of secret at the fixture's time plus d.
func (f *fixture) code(secret string, d time.Duration) string {
	f.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clock.Now().Add(d), totpOpts)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) appPasswords(user string) []store.AppPassword {
	f.t.Helper()
	l, err := f.db.ListAppPasswords(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) getAccount(user string) store.Account {
	f.t.Helper()
	a, err := f.db.GetAccount(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	f    *fixture
	c    *http.Client
	base string
	// header is added to every request (e.g. Sec-Fetch-Site).
	header http.Header
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: f.t, f: f, base: f.ts.URL, header: http.Header{}, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// reply is a response with its body read.
type reply struct {
	*http.Response
	Body string
}

func (b *browser) do(req *http.Request) reply {
	b.t.Helper()
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return reply{resp, string(body)}
}

func (b *browser) get(path string) reply {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) reply {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in with the password and, if given, a code; it fails the
// test unless the sign-in ends on want.
func (b *browser) signIn(user, pw, want string) {
	b.t.Helper()
	r := b.post("/signin", url.Values{"username": {user}, "password": {pw}})
	expectRedirect(b.t, r, want)
}

func (b *browser) enterCode(code, want string) reply {
	b.t.Helper()
	r := b.post("/signin/code", url.Values{"code": {code}})
	if want != "" {
		expectRedirect(b.t, r, want)
	}
	return r
}

func expectRedirect(t *testing.T, r reply, want string) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("got %d to %q, want 303 to %q; body:\n%s", r.StatusCode, r.Header.Get("Location"), want, excerpt(r.Body))
	}
}

func expectStatus(t *testing.T, r reply, want int, contains ...string) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, excerpt(r.Body))
	}
	text := html.UnescapeString(r.Body)
	for _, c := range contains {
		if !strings.Contains(text, c) {
			t.Fatalf("%s %s: body lacks %q:\n%s", r.Request.Method, r.Request.URL.Path, c, excerpt(r.Body))
		}
	}
}

// excerpt is the <main> of a page, or its start.
func excerpt(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 3000 {
		body = body[:3000]
	}
	return body
}

var (
	reSecret   = regexp.MustCompile(`(?s)id="totp-secret"[^>]*>(.*?)</p>`)
	rePassword = regexp.MustCompile(`(?s)id="app-password"[^>]*>(.*?)</p>`)
	reCodes    = regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`)
	reToken    = regexp.MustCompile(`name="token" value="([^"]+)"`)
	reTags     = regexp.MustCompile(`<[^>]+>`)
)

// textOf returns the text inside the element matched by re's group 1,
// tags removed and white space collapsed.
func textOf(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, excerpt(body))
	}
	return strings.Join(strings.Fields(html.UnescapeString(reTags.ReplaceAllString(m[1], " "))), " ")
}
