package portal

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
)

// newDirectoryFixture is a portal whose accounts come from an in-memory
// directory (authn.Directory over dirtest.Memory, the cache on the
// fixture's clock).
func newDirectoryFixture(t *testing.T) (*fixture, *dirtest.Memory) {
	t.Helper()
	mem := &dirtest.Memory{Names: directory.Names{DefaultDomain: "example.org"}}
	f := newFixture(t, nil)
	f.v.Names = mem.Names
	f.v.Directory = &authn.Directory{Dir: mem, Kind: "ldap", Admin: true, Now: f.clock.Now}
	return f, mem
}

// TestDirectorySignIn: a directory user signs in with the directory's
// password (any spelling of the login), is provisioned without a primary
// password, gets the directory's admin role, cannot change the password in
// passgate, and a user in the directory's MFA group must enrol first.
func TestDirectorySignIn(t *testing.T) {
	f, mem := newDirectoryFixture(t)
	mem.Set(directory.Entry{Username: "carol@example.org", Admin: true}, "carol's ldap password")
	mem.Set(directory.Entry{Username: "bob@example.org", MFARequired: true}, "bob's ldap password")

	b := f.browser()
	expectStatus(t, b.post("/signin", url.Values{"username": {"carol"}, "password": {"wrong"}}), http.StatusUnauthorized, msgBadCredentials)
	b.signIn("Carol", "carol's ldap password", "/app-passwords")
	a := f.getAccount("carol@example.org")
	if a.PasswordHash != "" || a.Directory != "ldap" || !a.Admin || a.MFA {
		t.Fatalf("carol after the first sign-in: %+v; want provisioned, no hash, admin", a)
	}
	expectStatus(t, b.get("/account"), http.StatusOK, "Your password is your organisation's")
	r := b.post("/account/password", url.Values{"current": {"carol's ldap password"}, "new": {"new password 1"}, "confirm": {"new password 1"}})
	expectStatus(t, r, http.StatusConflict, msgDirectoryPassword)
	if a := f.getAccount("carol@example.org"); a.PasswordHash != "" {
		t.Fatal("the portal stored a primary password for a directory account")
	}

	// bob is in the MFA group: his first sign-in enrols him.
	bob := f.browser()
	bob.signIn("bob@example.org", "bob's ldap password", "/mfa/setup")
	if a := f.getAccount("bob@example.org"); !a.MFA || a.TOTP != nil || a.Directory != "ldap" {
		t.Fatalf("bob after the first sign-in: %+v; want provisioned with MFA on, not enrolled", a)
	}
	expectRedirect(t, bob.get("/app-passwords"), "/mfa/setup")
}

// TestDirectoryEndsPortalSession: a signed-in directory user disabled in
// the directory loses the portal session once the cached state expires;
// while the directory is unreachable (and the cache expired) pages fail as
// unavailable and the session is kept.
func TestDirectoryEndsPortalSession(t *testing.T) {
	f, mem := newDirectoryFixture(t)
	mem.Set(directory.Entry{Username: "alice@example.org"}, "alice's ldap password")
	b := f.browser()
	b.signIn("alice", "alice's ldap password", "/app-passwords")

	mem.SetDown(true)
	f.clock.Advance(authn.DefaultDirectoryCacheTTL)
	expectStatus(t, b.get("/app-passwords"), http.StatusServiceUnavailable)
	mem.SetDown(false)
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "Your app passwords")

	mem.Update("alice@example.org", func(e *directory.Entry) { e.Disabled = true })
	expectStatus(t, b.get("/app-passwords"), http.StatusOK) // the cached state, for its time
	f.clock.Advance(authn.DefaultDirectoryCacheTTL)
	expectRedirect(t, b.get("/app-passwords"), "/signin")
	mem.Update("alice@example.org", func(e *directory.Entry) { e.Disabled = false })
	f.clock.Advance(authn.DefaultDirectoryCacheTTL)
	expectRedirect(t, b.get("/app-passwords"), "/signin") // the session was ended, not suspended
}
