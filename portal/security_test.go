package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// TestCrossOriginPostsRefused: every state change refuses a request that a
// browser marks as coming from another site, and changes nothing.
func TestCrossOriginPostsRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.account("admin@example.org", adminPW, false)
	f.account("bob@example.org", bobPW, false)
	f.update("admin@example.org", func(a *store.Account) { a.Admin = true })
	np, err := f.setup().CreateAppPassword(context.Background(), testActor, "bob@example.org", "Phone", account.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	b.signIn("admin@example.org", adminPW, "/app-passwords")

	posts := []struct {
		path string
		form url.Values
	}{
		{"/signin", url.Values{"username": {"bob@example.org"}, "password": {bobPW}}},
		{"/signin/code", url.Values{"code": {"123456"}}},
		{"/signout", nil},
		{"/mfa/setup", url.Values{"code": {"123456"}}},
		{"/app-passwords", url.Values{"name": {"Evil"}, "scope": {"imap"}}},
		{"/app-passwords/profile", url.Values{"token": {"x"}}},
		{"/app-passwords/" + np.ID + "/revoke", nil},
		{"/account/password", url.Values{"current": {adminPW}, "new": {"evil evil evil"}, "confirm": {"evil evil evil"}}},
		{"/admin/actions", url.Values{"action": {"delete-app-passwords"}, "users": {"bob@example.org"}, "confirm": {"yes"}}},
	}
	headers := []struct {
		name string
		h    http.Header
	}{
		{"Sec-Fetch-Site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}}},
		{"Sec-Fetch-Site same-site", http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://sub." + f.ts.Listener.Addr().String()}}},
		{"old browser, foreign Origin", http.Header{"Origin": {"http://evil.example"}}},
	}
	for _, h := range headers {
		for _, p := range posts {
			t.Run(h.name+" "+p.path, func(t *testing.T) {
				b.header = h.h
				defer func() { b.header = http.Header{} }()
				r := b.post(p.path, p.form)
				expectStatus(t, r, http.StatusForbidden, "came from another web site")
			})
		}
	}
	// Nothing changed: still signed in, bob's password alive, no new one.
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "You have no app passwords yet.")
	if n := len(f.appPasswords("bob@example.org")); n != 1 {
		t.Errorf("bob has %d app passwords", n)
	}
	// The same form from the portal itself goes through.
	b.header = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {f.ts.URL}}
	expectStatus(t, b.post("/app-passwords", url.Values{"name": {"Mine"}, "scope": {"imap"}}), http.StatusOK, "Your new app password")
}

func TestCookieFlags(t *testing.T) {
	tests := []struct {
		base       string
		name       string
		secure     bool
		hostPrefix bool
	}{
		{"https://mail.example.org", "__Host-passgate", true, true},
		{"http://mail.example.org", "__Host-passgate", true, true}, // plain http elsewhere: cookie never leaves TLS
		{"http://127.0.0.1:8080", "passgate", false, false},
		{"http://localhost:8080", "passgate", false, false},
		{"http://[::1]:8080", "passgate", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			f := newFixture(t, nil)
			f.account("bob@example.org", bobPW, false)
			s := *f.srv
			s.BaseURL = tc.base
			h := s.Handler()
			req := httptest.NewRequest("POST", tc.base+"/signin", strings.NewReader(url.Values{"username": {"bob@example.org"}, "password": {bobPW}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			cookies := w.Result().Cookies()
			if w.Code != http.StatusSeeOther || len(cookies) != 1 {
				t.Fatalf("status %d, cookies %v", w.Code, cookies)
			}
			c := cookies[0]
			if c.Name != tc.name || c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie %q: %s", c.Name, w.Header().Get("Set-Cookie"))
			}
			if hsts := w.Header().Get("Strict-Transport-Security"); (hsts != "") != strings.HasPrefix(tc.base, "https:") {
				t.Errorf("Strict-Transport-Security %q", hsts)
			}
			if len(c.Value) < 43 {
				t.Errorf("session token of %d characters", len(c.Value))
			}
		})
	}
}

// TestSecurityHeaders: every page carries the strict CSP and no-store, and
// no page has inline script, inline event handlers or inline styles.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	b := f.admin("admin@example.org", adminPW)
	f.account("alice@example.org", alicePW, true)
	f.account("bob@example.org", bobPW, false)
	bob := f.browser()
	anon := f.browser()
	bob.signIn("bob@example.org", bobPW, "/app-passwords")
	created := b.post("/app-passwords", url.Values{"name": {"Mac"}, "scope": {"imap"}})
	id := f.appPasswords("admin@example.org")[0].ID
	pages := map[string]reply{
		"signin":        anon.get("/signin"),
		"refused":       anon.post("/signin", url.Values{"username": {"x"}, "password": {"y"}}),
		"app-passwords": b.get("/app-passwords"),
		"created":       created,
		"revoke":        b.get("/app-passwords/" + id + "/revoke"),
		"account":       b.get("/account"),
		"enrol":         bob.get("/mfa/setup"),
		"admin":         b.get("/admin"),
		"admin user":    b.get("/admin/users/alice@example.org"),
		"admin confirm": b.post("/admin/actions", url.Values{"action": {"disable"}, "users": {"alice@example.org"}}),
		"not found":     b.get("/admin/users/nobody@example.org"),
		"autoconfig":    anon.get("/mail/config-v1.1.xml"),
	}
	inline := regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|<style|javascript:`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	for name, r := range pages {
		t.Run(name, func(t *testing.T) {
			if r.StatusCode/100 == 3 {
				t.Fatalf("redirected to %s instead of a page", r.Header.Get("Location"))
			}
			h := r.Header
			if got := h.Get("Content-Security-Policy"); got != cspPolicy {
				t.Errorf("CSP %q", got)
			}
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(h.Get("Content-Security-Policy"), d) {
					t.Errorf("CSP lacks %s", d)
				}
			}
			if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("headers %v", h)
			}
			if m := inline.FindString(r.Body); m != "" {
				t.Errorf("inline handler or style: %q", m)
			}
			for _, m := range script.FindAllStringSubmatch(r.Body, -1) {
				if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
					t.Errorf("inline script: %q", m[0])
				}
			}
		})
	}
	static := anon.get("/static/portal.js")
	if static.StatusCode != 200 || !strings.Contains(static.Header.Get("Content-Type"), "javascript") ||
		!strings.Contains(static.Header.Get("Cache-Control"), "max-age") || !strings.Contains(static.Body, "clipboard") {
		t.Errorf("portal.js: %d %v", static.StatusCode, static.Header)
	}
	if css := anon.get("/static/portal.css"); css.StatusCode != 200 || !strings.Contains(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("portal.css: %d %v", css.StatusCode, css.Header)
	}
}

func TestRemoteAddr(t *testing.T) {
	s := &Server{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	tests := []struct {
		peer, xff, want string
	}{
		{"192.0.2.1:1234", "", "192.0.2.1:1234"},
		{"192.0.2.1:1234", "203.0.113.9", "192.0.2.1:1234"}, // untrusted peer: header ignored
		{"10.1.2.3:1234", "203.0.113.9", "203.0.113.9:0"},
		{"10.1.2.3:1234", "198.51.100.7, 203.0.113.9, 10.9.9.9", "203.0.113.9:0"}, // rightmost untrusted
		{"10.1.2.3:1234", "garbage", "10.1.2.3:1234"},
		{"[::ffff:192.0.2.1]:99", "", "192.0.2.1:99"},
	}
	for _, tc := range tests {
		t.Run(tc.peer+" "+tc.xff, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := s.remoteAddr(r).String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSeal(t *testing.T) {
	s := &Server{Key: testKey}
	sealed, err := s.seal("totp", "alice", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.open("totp", "alice", sealed); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", got, err)
	}
	for _, tc := range []struct{ purpose, user string }{{"totp", "bob"}, {"profile", "alice"}} {
		if _, err := s.open(tc.purpose, tc.user, sealed); err == nil {
			t.Errorf("sealed value opened as %s of %s", tc.purpose, tc.user)
		}
	}
	other := &Server{Key: make([]byte, 32)}
	if _, err := other.open("totp", "alice", sealed); err == nil {
		t.Error("opened with another key")
	}
}

func TestHandlerChecksFields(t *testing.T) {
	for name, s := range map[string]*Server{
		"no store":    {Key: testKey, BaseURL: "http://x"},
		"short key":   {Key: testKey[:16], BaseURL: "http://x"},
		"no base URL": {Key: testKey},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Handler did not panic")
				}
			}()
			s.Handler()
		})
	}
}

func TestUserAgent(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome 126 on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari 17 on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iOS"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128 on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge 126 on Windows"},
		{"curl/8.5.0", "curl/8.5.0"},
		{"", ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", tc.ua)
		if got := userAgent(r); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.ua, got, tc.want)
		}
	}
}
