package portal

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// in returns b for use in subtest t (so that a failure ends t only).
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// backBypasses are `back` values that try to leave the portal or reach a
// page other than the admin pages, in the forms browsers and servers read
// differently.
var backBypasses = []string{
	"https://evil.example/",
	"http://evil.example/admin",
	"//evil.example/admin",
	"///evil.example/admin",
	`/\evil.example`,
	`\\evil.example`,
	`/admin/../\evil.example`,
	`/admin/..\/evil.example`,
	`/admin\..\..\evil.example`,
	"/admin/..//evil.example",
	"/admin/../../evil.example",
	"/admin/%2e%2e/%5cevil.example",
	"/admin/%2e%2e//evil.example",
	"/admin%2f%2fevil.example",
	"/\tevil.example",
	"/\t/evil.example",
	"/admin/../\t/evil.example",
	"/admin/../\n/evil.example",
	"/admin/../\r\n/evil.example",
	"/admin\r\nSet-Cookie: x=y",
	"/admin/..%0d%0a//evil.example",
	" //evil.example",
	"/admin@evil.example",
	"javascript:alert(1)//admin",
	"JaVaScRiPt:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"/admin/users/../../\\evil.example",
	"/admin/users/..",
	"/admin/users/.",
	"/admin/users/%2e%2e",
	"/admin/users/bob@example.org/../../../evil.example",
	"/admin/users/",
	"/app-passwords",
	"/signout",
	"/admin/../app-passwords",
	"/administrator",
	"/admin.evil.example",
	"/admin?next=//evil.example",
	"/admin#//evil.example",
	"/admin?q=x#@evil.example",
	"",
	"%",
	"/admin/users/%zz",
	"\x00/admin",
	"/admin\x00//evil.example",
}

// localAdmin matches the only targets the admin pages return to: the user
// list (optionally searched) and one user's page.
var localAdmin = regexp.MustCompile(`^/admin(\?q=[A-Za-z0-9%._~+-]+|/users/[A-Za-z0-9%._~@!$&'()*+,;=:-]+)?$`)

// browserTarget resolves a Location header as a browser does (WHATWG URL:
// tabs and newlines removed, backslashes read as slashes in http URLs)
// against the portal's origin.
func browserTarget(t *testing.T, base, loc string) *url.URL {
	t.Helper()
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(strings.TrimSpace(loc))
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q does not parse: %v", loc, err)
	}
	return b.ResolveReference(u)
}

// expectLocalAdmin fails unless target is one of the admin pages of this
// portal, as the server wrote it and as a browser reads it.
func expectLocalAdmin(t *testing.T, f *fixture, what, target string) {
	t.Helper()
	if !localAdmin.MatchString(target) {
		t.Errorf("%s %q is not a known admin page", what, target)
	}
	got := browserTarget(t, f.ts.URL, target)
	if base, _ := url.Parse(f.ts.URL); got.Host != base.Host || got.Scheme != base.Scheme || !strings.HasPrefix(got.Path, "/admin") {
		t.Errorf("%s %q leads a browser to %s", what, target, got)
	}
}

var reCancel = regexp.MustCompile(`<a class="button" href="([^"]*)">Cancel</a>`)
var reBack = regexp.MustCompile(`name="back" value="([^"]*)"`)

// TestAdminBackStaysLocal: whatever the admin form's back field says, the
// confirmation page's Cancel link, the form it posts and the redirect after
// the action lead to an admin page of the portal (issue 9, item 8).
func TestAdminBackStaysLocal(t *testing.T) {
	f, b := adminFixture(t)
	for _, back := range backBypasses {
		t.Run(back, func(t *testing.T) {
			b := b.in(t)
			form := url.Values{"action": {"enable"}, "users": {"bob@example.org"}, "back": {back}}
			r := b.post("/admin/actions", form)
			expectStatus(t, r, http.StatusOK, "Enable accounts?")
			for _, re := range []*regexp.Regexp{reCancel, reBack} {
				m := re.FindStringSubmatch(r.Body)
				if m == nil {
					t.Fatalf("confirmation page lacks %s", re)
				}
				expectLocalAdmin(t, f, "confirmation page link", html.UnescapeString(m[1]))
			}
			form.Set("confirm", "yes")
			r = b.post("/admin/actions", form)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303", r.StatusCode)
			}
			expectLocalAdmin(t, f, "Location", r.Header.Get("Location"))
			// An empty action or selection redirects too.
			form.Del("action")
			expectLocalAdmin(t, f, "Location", b.post("/admin/actions", form).Header.Get("Location"))
		})
	}
}

// TestAdminBackKeepsKnownPages: the pages the admin forms name are kept, so
// that an admin returns where the action started.
func TestAdminBackKeepsKnownPages(t *testing.T) {
	f, b := adminFixture(t)
	f.account("o'brien/x@example.org", "obrien primary password", false)
	for back, want := range map[string]string{
		"/admin":                                 "/admin",
		"/admin?q=car":                           "/admin?q=car",
		"/admin?q=" + url.QueryEscape("a b&c=d"): "/admin?q=a+b%26c%3Dd",
		"/admin?q=":                              "/admin",
		"/admin/users/bob@example.org":           "/admin/users/bob@example.org",
		"/admin/users/" + url.PathEscape("o'brien/x@example.org"): "/admin/users/o%27brien%2Fx@example.org",
		"/admin/users/BOB@example.org":                            "/admin/users/bob@example.org",
		"/admin/":                                                 "/admin",
	} {
		t.Run(back, func(t *testing.T) {
			r := b.in(t).post("/admin/actions", url.Values{"action": {"enable"}, "users": {"bob@example.org"}, "back": {back}, "confirm": {"yes"}})
			expectRedirect(t, r, want)
		})
	}
}

// TestRedirectOnlyLocal: the redirect helper itself never sends a browser
// off the portal, whatever a handler passes it.
func TestRedirectOnlyLocal(t *testing.T) {
	f := newFixture(t, nil)
	for _, target := range append([]string{"//evil.example", `/\evil.example`, "/a\\b", "/a\tb", "https://evil.example/", "evil.example", ""}, backBypasses...) {
		w := httptest.NewRecorder()
		f.srv.redirect(w, httptest.NewRequest("POST", "/admin/actions", nil), target)
		loc := w.Header().Get("Location")
		if u := browserTarget(t, f.ts.URL, loc); u.Host != f.ts.Listener.Addr().String() {
			t.Errorf("redirect(%q): Location %q leads to %s", target, loc, u)
		}
	}
	for _, target := range []string{"/", "/admin", "/admin?q=a+b", "/admin/users/o%27brien%2Fx@example.org", "/signin?signed-out"} {
		w := httptest.NewRecorder()
		f.srv.redirect(w, httptest.NewRequest("POST", "/x", nil), target)
		if loc := w.Header().Get("Location"); loc != target || w.Code != http.StatusSeeOther {
			t.Errorf("redirect(%q): %d to %q", target, w.Code, loc)
		}
	}
}
