package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// TestAdminNeedsSecondFactor: an account with the admin role and no
// authenticator can use none of the admin pages, by GET or POST, until it
// sets one up; it is sent to the setup with a message that says why, and
// nothing changes meanwhile (issue 9, item 15).
func TestAdminNeedsSecondFactor(t *testing.T) {
	f := newFixture(t, nil)
	f.account("root@example.org", adminPW, false)
	f.update("root@example.org", func(a *store.Account) { a.Admin = true })
	f.account("bob@example.org", bobPW, false)
	if _, err := f.setup().CreateAppPassword(t.Context(), testActor, "bob@example.org", "Phone", account.AppPasswordOptions{Expires: f.clock.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	b.signIn("root@example.org", adminPW, "/app-passwords") // the rest of the portal is open

	requests := []struct {
		name string
		do   func() reply
	}{
		{"GET /admin", func() reply { return b.get("/admin") }},
		{"GET /admin?q=bob", func() reply { return b.get("/admin?q=bob") }},
		{"GET /admin/users/bob", func() reply { return b.get("/admin/users/bob@example.org") }},
		{"GET /admin/users/nobody", func() reply { return b.get("/admin/users/nobody@example.org") }},
		{"POST /admin/actions confirm", func() reply {
			return b.post("/admin/actions", url.Values{"action": {"disable"}, "users": {"bob@example.org"}})
		}},
		{"POST /admin/actions delete", func() reply {
			return b.post("/admin/actions", url.Values{"action": {"delete-app-passwords"}, "users": {"bob@example.org"}, "confirm": {"yes"}})
		}},
		{"POST /admin/actions disable", func() reply {
			return b.post("/admin/actions", url.Values{"action": {"disable"}, "users": {"bob@example.org"}, "confirm": {"yes"}, "back": {"/admin"}})
		}},
		{"POST /admin/actions reset-mfa", func() reply {
			return b.post("/admin/actions", url.Values{"action": {"reset-mfa"}, "users": {"root@example.org"}, "confirm": {"yes"}})
		}},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			b.t = t
			defer func() { b.t = f.t }()
			expectRedirect(t, rq.do(), "/mfa/setup")
			expectStatus(t, b.get("/mfa/setup"), http.StatusOK, "Set up two-step verification", msgAdminNeedsMFA)
		})
	}
	if n := len(f.appPasswords("bob@example.org")); n != 1 {
		t.Errorf("bob has %d app passwords after an admin action without a second factor", n)
	}
	if a := f.getAccount("bob@example.org"); a.Disabled {
		t.Error("bob disabled by an admin without a second factor")
	}
	recs, err := f.db.RecentAudit(t.Context(), "bob@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Protocol == "admin" {
			t.Errorf("admin action audited: %+v", r)
		}
	}

	// Set up the authenticator in the browser: the admin pages open.
	r := b.get("/mfa/setup")
	secret := strings.ReplaceAll(textOf(t, reSecret, r.Body), " ", "")
	expectStatus(t, b.post("/mfa/setup", url.Values{"code": {f.code(secret, 0)}}), http.StatusOK, "Save your recovery codes")
	expectStatus(t, b.get("/admin"), http.StatusOK, "bob@example.org")
	expectStatus(t, b.get("/admin/users/bob@example.org"), http.StatusOK, "App passwords (1)")
	expectRedirect(t, b.post("/admin/actions", url.Values{"action": {"delete-app-passwords"}, "users": {"bob@example.org"}, "confirm": {"yes"}}), "/admin")
	if n := len(f.appPasswords("bob@example.org")); n != 0 {
		t.Errorf("bob has %d app passwords after the enrolled admin's action", n)
	}

	// Its authenticator reset: the admin pages close again.
	f.update("root@example.org", func(a *store.Account) { a.TOTP = nil })
	expectRedirect(t, b.get("/admin"), "/mfa/setup")
}

// admin creates user with the admin role and an enrolled authenticator and
// returns a browser signed in as it with the password and a code.
func (f *fixture) admin(user, pw string) *browser {
	f.t.Helper()
	f.account(user, pw, false)
	f.update(user, func(a *store.Account) { a.Admin = true })
	secret, _ := f.enrolDirect(user)
	b := f.browser()
	b.signIn(user, pw, "/signin/code")
	b.enterCode(f.code(secret, 0), "/app-passwords")
	return b
}

// TestAdminSessionWithoutSecondFactor: a session that signed in with the
// password alone, before the admin enrolled an authenticator in another
// browser, does not become an admin session by that enrolment: the admin
// pages need a session that passed the account's current second factor.
func TestAdminSessionWithoutSecondFactor(t *testing.T) {
	f := newFixture(t, nil)
	f.account("root@example.org", adminPW, false)
	f.update("root@example.org", func(a *store.Account) { a.Admin = true })
	f.account("bob@example.org", bobPW, false)
	early := f.browser()
	early.signIn("root@example.org", adminPW, "/app-passwords") // password only: no authenticator yet

	other := f.browser()
	other.signIn("root@example.org", adminPW, "/app-passwords")
	r := other.get("/mfa/setup")
	secret := strings.ReplaceAll(textOf(t, reSecret, r.Body), " ", "")
	expectStatus(t, other.post("/mfa/setup", url.Values{"code": {f.code(secret, 0)}}), http.StatusOK, "Save your recovery codes")
	expectStatus(t, other.get("/admin"), http.StatusOK, "bob@example.org")

	if r := early.get("/admin"); r.StatusCode == http.StatusOK {
		t.Fatalf("the password-only session opened /admin after the enrolment elsewhere: %d", r.StatusCode)
	}
	early.post("/admin/actions", url.Values{"action": {"disable"}, "users": {"bob@example.org"}, "confirm": {"yes"}})
	if f.getAccount("bob@example.org").Disabled {
		t.Fatal("the password-only session disabled bob")
	}
	// Signing in again with a code gives the admin pages back.
	again := f.browser()
	again.signIn("root@example.org", adminPW, "/signin/code")
	again.enterCode(f.code(secret, 30*time.Second), "/app-passwords")
	expectStatus(t, again.get("/admin"), http.StatusOK, "bob@example.org")
}
