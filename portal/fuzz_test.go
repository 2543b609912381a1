package portal

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// FuzzAdminBack: whatever the admin form's back field holds, the portal
// returns to one of its admin pages, as the server writes it and as a
// browser reads it.
func FuzzAdminBack(f *testing.F) {
	for _, s := range backBypasses {
		f.Add(s)
	}
	for _, s := range []string{"/admin", "/admin?q=car", "/admin/users/bob@example.org", "/admin/users/o%27brien%2Fx@example.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := adminBack(raw)
		if !localAdmin.MatchString(got) || !isLocalPath(got) {
			t.Fatalf("adminBack(%q) = %q", raw, got)
		}
		u := browserTarget(t, "http://portal.example", got)
		if u.Host != "portal.example" || !strings.HasPrefix(u.Path, "/admin") {
			t.Fatalf("adminBack(%q) = %q leads a browser to %s", raw, got, u)
		}
		if again := adminBack(got); again != got {
			t.Fatalf("adminBack(%q) = %q, but adminBack(%q) = %q", raw, got, got, again)
		}
	})
}

// fuzzPortal is a portal with an admin (authenticator enrolled) and a user
// with an app password, on a bolt store, served in-process.
type fuzzPortal struct {
	srv   *Server
	h     http.Handler
	db    *bolt.DB
	admin store.Account // as enrolled
	log   *testlog.Buffer
}

func newFuzzPortal(f *testing.F) *fuzzPortal {
	f.Helper()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	db, err := bolt.Open(filepath.Join(f.TempDir(), "passgate.db"), bolt.Options{Now: clk})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	log, logs := testlog.New(slog.LevelWarn)
	v := &authn.Verifier{Store: db, Params: testParams, Now: clk, Logger: log}
	s := &Server{Store: db, Verifier: v, Key: testKey, BaseURL: "http://127.0.0.1:8080", Now: clk, Logger: log,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Mail:           MailSettings{IMAPHost: "imap.example.org", SMTPHost: "smtp.example.org"}}
	ctx := context.Background()
	for _, u := range []struct{ name, pw string }{{"admin@example.org", adminPW}, {"bob@example.org", bobPW}} {
		if err := s.accounts().CreateUser(ctx, testActor, account.NewUser{Username: u.name, Password: u.pw, MFA: false}); err != nil {
			f.Fatal(err)
		}
	}
	if _, _, err := s.EnrolTOTP(ctx, "admin@example.org"); err != nil {
		f.Fatal(err)
	}
	if err := db.UpdateAccount(ctx, "admin@example.org", func(a *store.Account) error { a.Admin = true; return nil }); err != nil {
		f.Fatal(err)
	}
	if _, err := s.accounts().CreateAppPassword(ctx, testActor, "bob@example.org", "Phone", account.AppPasswordOptions{}); err != nil {
		f.Fatal(err)
	}
	admin, err := db.GetAccount(ctx, "admin@example.org")
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzPortal{srv: s, h: s.Handler(), db: db, admin: admin, log: logs}
}

// session restores the admin account and gives it a new signed-in
// session, so that every input starts from the same state; it returns the
// cookie.
func (p *fuzzPortal) session(t *testing.T) *http.Cookie {
	ctx := context.Background()
	err := p.db.UpdateAccount(ctx, p.admin.Username, func(a *store.Account) error { *a = p.admin; return nil })
	if err != nil {
		t.Fatal(err)
	}
	token := newToken()
	sess := session{User: p.admin.Username, Stage: stageFull, PWTag: pwTag(p.admin.PasswordHash), MFATag: mfaTag(p.admin.TOTP), Expires: p.srv.now().Add(time.Hour)}
	if err := p.srv.saveSession(ctx, sessionKey(token), sess); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.db.DeleteKV(context.Background(), sessionKey(token)) })
	return &http.Cookie{Name: p.srv.cookieName(), Value: token}
}

// rawRequest is an HTTP/1.1 request with a form body.
func rawRequest(method, target string, form url.Values, headers ...string) []byte {
	body := form.Encode()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if method == "POST" {
		b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

const adBody = `<Autodiscover><Request><EMailAddress>bob@example.org</EMailAddress>` +
	`<AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>`

// FuzzRequest sends the portal any request a client can send (method,
// path, headers, cookies, X-Forwarded-For, form or XML body), signed in as
// an admin or not, and checks what every answer must be: no server error
// or panic, the security headers, a session cookie only with its flags,
// and no redirect off the portal.
func FuzzRequest(f *testing.F) {
	p := newFuzzPortal(f)
	admin := url.Values{"action": {"enable"}, "users": {"bob@example.org"}, "confirm": {"yes"}}
	withBack := func(back string) url.Values {
		v := url.Values{}
		for k, x := range admin {
			v[k] = x
		}
		v.Set("back", back)
		return v
	}
	seeds := []struct {
		raw      []byte
		signedIn bool
	}{
		{rawRequest("GET", "/admin", nil), true},
		{rawRequest("GET", "/admin?q=BOB", nil), true},
		{rawRequest("GET", "/admin/users/bob@example.org", nil), true},
		{rawRequest("GET", "/admin/users/%2e%2e", nil), true},
		{rawRequest("POST", "/admin/actions", withBack(`/admin/../\evil.example`)), true},
		{rawRequest("POST", "/admin/actions", withBack("/admin/users/bob@example.org")), true},
		{rawRequest("POST", "/admin/actions", url.Values{"action": {"disable"}, "users": {"admin@example.org"}, "back": {"//evil.example"}}), true},
		{rawRequest("POST", "/signin", url.Values{"username": {"admin@example.org"}, "password": {adminPW}}), false},
		{rawRequest("POST", "/signin", url.Values{"username": {"bob@example.org"}, "password": {bobPW}}, "X-Forwarded-For: 198.51.100.7, garbage"), false},
		{rawRequest("POST", "/signin/code", url.Values{"code": {"123456"}}), true},
		{rawRequest("POST", "/app-passwords", url.Values{"name": {"Mac"}, "scope": {"imap", "smtp"}, "expires": {"2026-06-30"}}), true},
		{rawRequest("POST", "/app-passwords/profile", url.Values{"token": {"AAAA"}}), true},
		{rawRequest("GET", "/app-passwords", nil, "Cookie: passgate=not-a-session; passgate="+strings.Repeat("A", 200)), false},
		{rawRequest("GET", "/mfa/setup", nil, "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Safari/604.1"), true},
		{rawRequest("POST", "/signout", nil, "Origin: http://evil.example", "Sec-Fetch-Site: cross-site"), true},
		{rawRequest("GET", "/mail/config-v1.1.xml?emailaddress=bob%40example.org", nil), false},
		{[]byte("POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(adBody)) + "\r\n\r\n" + adBody), false},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.signedIn)
	}
	f.Fuzz(func(t *testing.T, raw []byte, signedIn bool) {
		if len(raw) > 2*maxForm {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 before any handler
		}
		req.RemoteAddr = "192.0.2.10:4321"
		req.RequestURI = ""
		if signedIn {
			req.AddCookie(p.session(t))
		}
		w := httptest.NewRecorder()
		p.h.ServeHTTP(w, req.WithContext(t.Context()))
		checkAnswer(t, p, w)
	})
}

// checkAnswer checks what every answer of the portal must be.
func checkAnswer(t *testing.T, p *fuzzPortal, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("status %d: %s\nlog:\n%s", w.Code, excerpt(w.Body.String()), p.log.String())
	}
	h := w.Header()
	if h.Get("Content-Security-Policy") != cspPolicy || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("security headers missing: %v", h)
	}
	if loc := h.Get("Location"); loc != "" {
		if !isLocalPath(loc) {
			t.Fatalf("redirect to %q", loc)
		}
		if u := browserTarget(t, p.srv.BaseURL, loc); u.Host != "127.0.0.1:8080" {
			t.Fatalf("redirect %q leads a browser to %s", loc, u)
		}
	}
	for _, c := range w.Result().Cookies() {
		if c.Name != p.srv.cookieName() || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("cookie %q without its flags: %v", c.Name, h.Values("Set-Cookie"))
		}
	}
}
