package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
)

// With authn.unused_after, the app-password list shows each password's
// removal date, marked when its warning period has begun, and the admin
// user page marks the stale ones.
func TestAppPasswordRetirementShown(t *testing.T) {
	const day = 24 * time.Hour
	f := newFixture(t, func(s *Server) {
		s.Accounts = &account.Service{Store: s.Store.(account.Store), Verifier: s.Verifier, Logger: s.Logger,
			Now: s.Now, Retire: account.Retirement{After: 90 * day, WarnBefore: 14 * day}}
	})
	const bob = "bob@example.org"
	f.account(bob, bobPW, false)
	create := func(name string) {
		if _, err := f.srv.Accounts.CreateAppPassword(context.Background(), testActor, bob, name, account.AppPasswordOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	oldDay := f.clock.Now()
	create("Old phone")
	f.clock.Advance(40 * day)
	freshDay := f.clock.Now()
	create("Fresh laptop")
	f.clock.Advance(37 * day) // Old phone idle 77 days: in its warning period

	b := f.browser()
	b.signIn(bob, bobPW, "/app-passwords")
	r := b.get("/app-passwords")
	oldAt, freshAt := oldDay.Add(90*day).UTC().Format(time.DateOnly), freshDay.Add(90*day).UTC().Format(time.DateOnly)
	expectStatus(t, r, http.StatusOK,
		`<span class="badge warn">will be removed on `+oldAt+` unless used</span>`,
		`<span class="hint">will be removed on `+freshAt+` unless used</span>`)

	adm := f.admin("admin@example.org", adminPW)
	r = adm.get("/admin/users/" + bob)
	expectStatus(t, r, http.StatusOK, "removal on "+oldAt, "removal on "+freshAt)
	if n := strings.Count(r.Body, `<span class="badge warn">stale</span>`); n != 1 {
		t.Errorf("%d passwords marked stale on the admin page, want 1 (Old phone)", n)
	}
}
