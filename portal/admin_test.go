package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// adminFixture has an admin (with an authenticator, signed in), bob and
// carol with two app passwords each, dave with one, and alice (MFA,
// enrolled).
func adminFixture(t *testing.T) (*fixture, *browser) {
	t.Helper()
	f := newFixture(t, nil)
	b := f.admin("admin@example.org", adminPW)
	f.account("alice@example.org", alicePW, true)
	f.enrolDirect("alice@example.org")
	for _, u := range []string{"bob", "carol", "dave"} {
		f.account(u+"@example.org", u+" primary password", false)
		n := 2
		if u == "dave" {
			n = 1
		}
		for i := range n {
			if _, err := f.setup().CreateAppPassword(context.Background(), testActor, u+"@example.org", "app "+string(rune('a'+i)), account.AppPasswordOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f, b
}

func TestAdminPagesRefuseNonAdmins(t *testing.T) {
	f, _ := adminFixture(t)
	b := f.browser()
	b.signIn("bob@example.org", "bob primary password", "/app-passwords")
	if strings.Contains(b.get("/app-passwords").Body, `href="/admin"`) {
		t.Error("a non-admin sees the Users link")
	}
	for _, r := range []reply{
		b.get("/admin"),
		b.get("/admin?q=carol"),
		b.get("/admin/users/carol@example.org"),
		b.post("/admin/actions", url.Values{"action": {"delete-app-passwords"}, "users": {"carol@example.org"}, "confirm": {"yes"}}),
	} {
		expectStatus(t, r, http.StatusForbidden, "Administrators only")
	}
	if n := len(f.appPasswords("carol@example.org")); n != 2 {
		t.Errorf("carol has %d app passwords after a non-admin's action", n)
	}
	// Signed out: the sign-in page, not the 403.
	expectRedirect(t, f.browser().get("/admin"), "/signin")
}

func TestAdminUserList(t *testing.T) {
	f, b := adminFixture(t)
	// bob signed in to IMAP once; the list shows it.
	f.db.AppendAudit(context.Background(), store.AuditRecord{Time: f.clock.Now().Add(-time.Hour), Protocol: "imap",
		Username: "bob@example.org", Result: "ok"})
	r := b.get("/admin")
	expectStatus(t, r, http.StatusOK, "5 accounts", "admin@example.org", "alice@example.org", "carol@example.org")
	row := rowOf(t, r.Body, "bob@example.org")
	for _, want := range []string{">2<", "2026-03-02 08:00 UTC", "imap", "active"} {
		if !strings.Contains(row, want) {
			t.Errorf("bob's row lacks %q:\n%s", want, row)
		}
	}
	if row := rowOf(t, r.Body, "alice@example.org"); !strings.Contains(row, ">on<") {
		t.Errorf("alice's MFA is not shown on:\n%s", row)
	}
	f.update("dave@example.org", func(a *store.Account) { a.MFA = true })
	if row := rowOf(t, b.get("/admin").Body, "dave@example.org"); !strings.Contains(row, "required, not set up") {
		t.Errorf("dave's MFA state:\n%s", row)
	}

	r = b.get("/admin?q=CAR")
	expectStatus(t, r, http.StatusOK, "1 matching accounts", "carol@example.org")
	if strings.Contains(r.Body, "bob@example.org") {
		t.Error("search shows bob")
	}
	r = b.get("/admin/users/bob@example.org")
	expectStatus(t, r, http.StatusOK, "App passwords (2)", "app a", "app b", "imap")
	expectStatus(t, b.get("/admin/users/nobody@example.org"), http.StatusNotFound, "No such user")
}

// rowOf returns the table row that mentions user's checkbox.
func rowOf(t *testing.T, body, user string) string {
	t.Helper()
	i := strings.Index(body, `value="`+user+`"`)
	if i < 0 {
		t.Fatalf("no row for %s", user)
	}
	j := strings.Index(body[i:], "</tr>")
	return body[i : i+j]
}

func TestAdminBulkDeleteAppPasswords(t *testing.T) {
	f, b := adminFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := f.db.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"action": {"delete-app-passwords"}, "users": {"bob@example.org", "carol@example.org"}, "back": {"/admin"}}
	r := b.post("/admin/actions", form)
	expectStatus(t, r, http.StatusOK, "Delete all app passwords?", "Selected users (2)", "bob@example.org", "carol@example.org")
	if n := len(f.appPasswords("bob@example.org")); n != 2 {
		t.Fatal("the confirmation page deleted")
	}
	form.Set("confirm", "yes")
	expectRedirect(t, b.post("/admin/actions", form), "/admin")
	expectStatus(t, b.get("/admin"), http.StatusOK, "Deleted 4 app passwords of 2 users.")
	for user, want := range map[string]int{"bob@example.org": 0, "carol@example.org": 0, "dave@example.org": 1} {
		if n := len(f.appPasswords(user)); n != want {
			t.Errorf("%s has %d app passwords, want %d", user, n, want)
		}
	}
	// One revocation event per password: live sessions end everywhere.
	for range 4 {
		select {
		case ev := <-events:
			if ev.Kind != store.EventAppPasswordRevoked || (ev.Username != "bob@example.org" && ev.Username != "carol@example.org") {
				t.Errorf("event %+v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("missing revocation event")
		}
	}
	for _, u := range []string{"bob@example.org", "carol@example.org"} {
		recs, err := f.db.RecentAudit(context.Background(), u, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Protocol != "admin" || recs[0].Actor != "portal:admin@example.org" || recs[0].Result != "delete-app-passwords" {
			t.Errorf("%s audit: %+v", u, recs)
		}
	}
	if !strings.Contains(f.log.String(), `msg="account change" actor=portal:admin@example.org`) {
		t.Error("no log line for the admin action")
	}
}

func TestAdminAccountActions(t *testing.T) {
	f, b := adminFixture(t)
	user := f.browser()
	user.signIn("bob@example.org", "bob primary password", "/app-passwords")
	do := func(action string, users ...string) reply {
		t.Helper()
		return b.post("/admin/actions", url.Values{"action": {action}, "users": users, "confirm": {"yes"},
			"back": {"/admin/users/bob@example.org"}})
	}

	expectRedirect(t, do("require-mfa", "bob@example.org"), "/admin/users/bob@example.org")
	if a := f.getAccount("bob@example.org"); !a.MFA {
		t.Error("require-mfa did not set MFA")
	}
	expectRedirect(t, user.get("/app-passwords"), "/mfa/setup")

	expectRedirect(t, do("reset-mfa", "alice@example.org"), "/admin/users/bob@example.org")
	if a := f.getAccount("alice@example.org"); a.TOTP != nil || !a.MFA {
		t.Errorf("reset-mfa: TOTP %v, MFA %v", a.TOTP, a.MFA)
	}
	alice := f.browser()
	alice.signIn("alice@example.org", alicePW, "/mfa/setup") // enrols again, no code asked

	expectRedirect(t, do("disable", "bob@example.org"), "/admin/users/bob@example.org")
	if !f.getAccount("bob@example.org").Disabled {
		t.Error("not disabled")
	}
	expectRedirect(t, user.get("/mfa/setup"), "/signin")
	expectStatus(t, b.get("/admin/users/bob@example.org"), http.StatusOK, "Disable accounts: done for 1 users.", "disabled")
	expectRedirect(t, do("enable", "bob@example.org"), "/admin/users/bob@example.org")
	if f.getAccount("bob@example.org").Disabled {
		t.Error("not enabled")
	}

	t.Run("refused", func(t *testing.T) {
		expectRedirect(t, do("disable", "admin@example.org", "bob@example.org"), "/admin/users/bob@example.org")
		expectStatus(t, b.get("/admin"), http.StatusOK, "You cannot disable your own account.")
		if f.getAccount("bob@example.org").Disabled {
			t.Error("bob disabled along with a refused self-disable")
		}
		expectRedirect(t, do("explode", "bob@example.org"), "/admin/users/bob@example.org")
		expectStatus(t, b.get("/admin"), http.StatusOK, "Choose an action.")
		expectRedirect(t, do("disable"), "/admin/users/bob@example.org")
		expectStatus(t, b.get("/admin"), http.StatusOK, "Select at least one user.")
		r := b.post("/admin/actions", url.Values{"action": {"enable"}, "users": {"bob@example.org"}, "confirm": {"yes"}, "back": {"https://evil.example/"}})
		expectRedirect(t, r, "/admin")
		r = b.post("/admin/actions", url.Values{"action": {"enable"}, "users": {"ghost@example.org"}, "confirm": {"yes"}})
		expectRedirect(t, r, "/admin")
		expectStatus(t, b.get("/admin"), http.StatusOK, "no longer exists")
	})

	recs, err := f.db.RecentAudit(context.Background(), "bob@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Protocol == "admin" {
			if r.Actor != "portal:admin@example.org" {
				t.Errorf("actor %q", r.Actor)
			}
			got = append(got, r.Result)
		}
	}
	if strings.Join(got, ",") != "enable,enable,disable,require-mfa" {
		t.Errorf("bob's admin audit, newest first: %v", got)
	}
}

// Reset MFA of a user who never enrolled an authenticator resets nothing:
// the page says so (no error page), that user's account and activity are
// untouched, and the other selected users are reset as asked.
func TestAdminResetMFAWithoutAuthenticator(t *testing.T) {
	f, b := adminFixture(t)
	do := func(users ...string) reply {
		t.Helper()
		return b.post("/admin/actions", url.Values{"action": {"reset-mfa"}, "users": users, "confirm": {"yes"},
			"back": {"/admin/users/bob@example.org"}})
	}
	const refusal = "bob@example.org has no authenticator enrolled: nothing to reset."
	bobBefore := f.getAccount("bob@example.org")

	expectRedirect(t, do("bob@example.org"), "/admin/users/bob@example.org")
	page := b.get("/admin/users/bob@example.org")
	expectStatus(t, page, http.StatusOK, refusal)
	if strings.Contains(page.Body, "Reset MFA: done") {
		t.Error("the page says the reset was done")
	}

	// Refused for bob, done for alice, whatever the order.
	expectRedirect(t, do("bob@example.org", "alice@example.org"), "/admin/users/bob@example.org")
	expectStatus(t, b.get("/admin/users/bob@example.org"), http.StatusOK, "Reset MFA: done for 1 users.", refusal)
	if a := f.getAccount("alice@example.org"); a.TOTP != nil {
		t.Error("alice's authenticator kept: the refusal for bob stopped the reset of alice")
	}
	if a := f.getAccount("bob@example.org"); a.TOTP != nil || a.MFA != bobBefore.MFA {
		t.Errorf("bob changed by the refused resets: %+v", a)
	}
	recs, err := f.db.RecentAudit(context.Background(), "bob@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Result == account.ResultMFAReset {
			t.Errorf("refused reset audited: %+v", r)
		}
	}

	// Many refused: the first few are named, the rest counted.
	f.account("eve@example.org", "eve primary password", false)
	f.account("frank@example.org", "frank primary password", false)
	expectRedirect(t, do("bob@example.org", "carol@example.org", "dave@example.org", "eve@example.org", "frank@example.org"),
		"/admin/users/bob@example.org")
	page = b.get("/admin/users/bob@example.org")
	expectStatus(t, page, http.StatusOK, refusal, "carol@example.org has no authenticator enrolled",
		"dave@example.org has no authenticator enrolled", "2 more users were refused likewise.")
	if strings.Contains(page.Body, "eve@example.org has") {
		t.Error("more refusals named than maxRefusalsShown")
	}
}
