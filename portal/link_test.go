package portal

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/store"
)

const alice = "alice@example.org"

// linkedFixture has alice signed in with her password and her mailbox at
// the IdP, not linked yet.
func linkedFixture(t *testing.T) (*idpFixture, *browser) {
	t.Helper()
	f := newIDPFixture(t, nil)
	f.account(alice, alicePW, false)
	f.idp.AddUser(alice)
	b := f.browser()
	b.signIn(alice, alicePW, "/app-passwords")
	return f, b
}

// link runs the link flow and expects it to end back on /mailbox.
func (b *browser) link() {
	b.t.Helper()
	expectRedirect(b.t, b.callback(b.throughIdP("/mailbox/link", nil)), "/mailbox")
}

// The link stores the refresh token sealed (AES-GCM, bound to the user),
// audited; the upstream login's Delegated source refreshes with it, and
// each rotated token is saved so the next refresh works.
func TestLinkStoresASealedRefreshToken(t *testing.T) {
	f, b := linkedFixture(t)
	expectStatus(t, b.get("/mailbox"), http.StatusOK, "not linked", "Link your mailbox")
	if !strings.Contains(b.get("/app-passwords").Body, `href="/mailbox"`) {
		t.Error("no Mailbox in the navigation")
	}
	b.link()
	expectStatus(t, b.get("/mailbox"), http.StatusOK, "Your mailbox is linked", "linked", "since 2026-03-02")

	a := f.getAccount(alice)
	if !a.OAuth.Usable() || !a.OAuth.Linked.Equal(f.clock.Now()) {
		t.Fatalf("stored link %+v", a.OAuth)
	}
	links := f.links()
	rt, err := links.RefreshToken(context.Background(), alice)
	if err != nil || !strings.HasPrefix(rt, "rt-") {
		t.Fatalf("refresh token %q, %v", rt, err)
	}
	if bytes.Contains(a.OAuth.RefreshEnc, []byte(rt)) || strings.Contains(f.log.String(), rt) {
		t.Error("the refresh token is stored or logged in the clear")
	}
	// Bound to alice: moved to bob's account it does not open.
	f.account("bob@example.org", bobPW, false)
	f.update("bob@example.org", func(x *store.Account) { x.OAuth = a.OAuth })
	if _, err := links.RefreshToken(context.Background(), "bob@example.org"); !errors.Is(err, oauth.ErrNotLinked) {
		t.Errorf("alice's sealed token opened for bob: %v", err)
	}
	if !hasRecord(f.records(alice), "mailbox-linked", "", "portal:"+alice) {
		t.Errorf("the link is not audited: %+v", f.records(alice))
	}

	d := &oauth.Delegated{Config: linkConfig(f.idp), Store: links}
	for i := range 3 {
		before, _ := links.RefreshToken(context.Background(), alice)
		if _, err := d.Fetch(context.Background(), alice); err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		after, err := links.RefreshToken(context.Background(), alice)
		if err != nil || after == before {
			t.Fatalf("refresh %d: the rotated token was not saved (%v)", i+1, err)
		}
	}
}

// Revoked at the provider, the next refresh marks the link refused and
// the page says "link again"; linking again makes it work.
func TestLinkRevokedAtTheProviderAsksToLinkAgain(t *testing.T) {
	f, b := linkedFixture(t)
	b.link()
	d := &oauth.Delegated{Config: linkConfig(f.idp), Store: f.links()}
	f.idp.RevokeUser(alice)
	f.clock.Advance(3600e9)
	if _, err := d.Fetch(context.Background(), alice); !errors.Is(err, oauth.ErrRelinkNeeded) {
		t.Fatalf("fetch after revocation: %v, want ErrRelinkNeeded", err)
	}
	if a := f.getAccount(alice); a.OAuth == nil || a.OAuth.Usable() || !a.OAuth.Refused.Equal(f.clock.Now()) {
		t.Fatalf("link after the refusal: %+v", a.OAuth)
	}
	expectStatus(t, b.get("/mailbox"), http.StatusOK, "link again", "no longer accepts", "Link again")
	b.link()
	expectStatus(t, b.get("/mailbox"), http.StatusOK, "Your mailbox is linked")
	if _, err := d.Fetch(context.Background(), alice); err != nil {
		t.Errorf("fetch after linking again: %v", err)
	}
}

// The link is refused, and nothing stored, when the provider's account is
// not the user's, when the user did not grant the mail scope, or when the
// callback's state is not this browser's flow.
func TestLinkRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
		tamper func(url.Values)
		back   func(*url.URL)
		status int
		msg    string
	}{
		{name: "someone else's mailbox", claims: map[string]any{"email": "mallory@example.org"},
			status: http.StatusUnauthorized, msg: "as mallory@example.org, but this is alice@example.org's account"},
		{name: "mail scope not granted", tamper: func(q url.Values) { q.Set("scope", "openid email profile") },
			status: http.StatusUnauthorized, msg: "You did not allow passgate to use your mail"},
		{name: "wrong nonce", tamper: func(q url.Values) { q.Set("nonce", "x") },
			status: http.StatusUnauthorized, msg: "The link failed"},
		{name: "forged state", back: func(cb *url.URL) { setQuery(cb, "state", "forged") },
			status: http.StatusBadRequest, msg: "no longer valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, b := linkedFixture(t)
			f.idp.SetIDClaims(alice, tc.claims)
			cb := b.throughIdP("/mailbox/link", tc.tamper)
			if tc.back != nil {
				tc.back(cb)
			}
			expectStatus(t, b.callback(cb), tc.status, tc.msg)
			if a := f.getAccount(alice); a.OAuth != nil {
				t.Errorf("a link was stored: %+v", a.OAuth)
			}
		})
	}
}

// An alias of the account is its own mailbox too.
func TestLinkAcceptsAnAlias(t *testing.T) {
	f, b := linkedFixture(t)
	f.update(alice, func(a *store.Account) { a.Aliases = []string{"a.smith@example.org"} })
	f.idp.SetIDClaims(alice, map[string]any{"email": "A.Smith@example.org"})
	b.link()
}

// A link flow started by one user is not finished by another signed in
// in the same browser meanwhile.
func TestLinkFlowBelongsToItsUser(t *testing.T) {
	f, b := linkedFixture(t)
	f.account("bob@example.org", bobPW, false)
	cb := b.throughIdP("/mailbox/link", nil)
	b.post("/signout", nil)
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	expectStatus(t, b.callback(cb), http.StatusBadRequest, "no longer valid")
	if f.getAccount("bob@example.org").OAuth != nil || f.getAccount(alice).OAuth != nil {
		t.Error("a link was stored")
	}
}

// SwapRefreshToken changes nothing when the stored token is no longer the
// old one (the user linked again); a portal key that changed loses links
// like enrolments: "link again".
func TestMailboxLinksSwap(t *testing.T) {
	f, b := linkedFixture(t)
	b.link()
	links := f.links()
	ctx := context.Background()
	cur, _ := links.RefreshToken(ctx, alice)
	if err := links.SwapRefreshToken(ctx, alice, "rt-stale", "rt-new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := links.RefreshToken(ctx, alice); got != cur {
		t.Errorf("a stale swap replaced the token: %q", got)
	}
	if err := links.SwapRefreshToken(ctx, alice, cur, "rt-next"); err != nil {
		t.Fatal(err)
	}
	if got, _ := links.RefreshToken(ctx, alice); got != "rt-next" {
		t.Errorf("after the swap: %q", got)
	}
	if err := links.SwapRefreshToken(ctx, "nobody@example.org", "a", "b"); err != nil {
		t.Errorf("swap for an unknown user: %v", err)
	}
	other := &MailboxLinks{Store: f.db, Key: bytes.Repeat([]byte{7}, 32)}
	if _, err := other.RefreshToken(ctx, alice); !errors.Is(err, oauth.ErrNotLinked) {
		t.Errorf("another key: %v, want ErrNotLinked", err)
	}
}

// An admin unlinks a user's mailbox (audited with the admin as actor);
// without the link configured the action is not offered.
func TestAdminUnlinksAMailbox(t *testing.T) {
	f, b := linkedFixture(t)
	b.link()
	admin := f.admin("admin@example.org", adminPW)
	expectStatus(t, admin.get("/admin/users/"+alice), http.StatusOK, "Mailbox", "linked", "Unlink mailboxes")
	r := admin.post("/admin/actions", url.Values{"action": {actionUnlink}, "users": {alice, "admin@example.org"},
		"back": {"/admin/users/" + alice}, "confirm": {"yes"}})
	expectRedirect(t, r, "/admin/users/"+alice)
	if a := f.getAccount(alice); a.OAuth != nil {
		t.Fatalf("still linked: %+v", a.OAuth)
	}
	if !hasRecord(f.records(alice), "mailbox-unlinked", "", "portal:admin@example.org") {
		t.Errorf("the unlink is not audited: %+v", f.records(alice))
	}
	expectStatus(t, b.get("/mailbox"), http.StatusOK, "not linked")

	plain := newFixture(t, nil)
	padmin := plain.admin("admin@example.org", adminPW)
	if strings.Contains(padmin.get("/admin").Body, actionUnlink) {
		t.Error("unlink offered without the mailbox link")
	}
	plain.account(alice, alicePW, false)
	r = padmin.post("/admin/actions", url.Values{"action": {actionUnlink}, "users": {alice}, "confirm": {"yes"}})
	expectRedirect(t, r, "/admin")
	if !strings.Contains(padmin.get("/admin").Body, "Choose an action.") {
		t.Error("an action that is not offered was accepted")
	}
	expectStatus(t, padmin.get("/mailbox"), http.StatusNotFound)
}
