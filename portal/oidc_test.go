package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/store"
)

const carol = "carol@example.org"

// The first OIDC sign-in creates the account (no primary password, audited
// with the user as actor); every sign-in is audited with mechanism oidc.
// The claim's value is normalised like every username.
func TestOIDCSignInProvisionsTheAccount(t *testing.T) {
	f := newIDPFixture(t, nil)
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)
	f.idp.SetIDClaims(carol, map[string]any{"email": " Carol@Example.ORG"})
	if _, err := f.db.GetAccount(context.Background(), carol); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("carol exists before her first sign-in: %v", err)
	}
	b := f.browser()
	if r := b.get("/signin"); !strings.Contains(r.Body, `href="/signin/oidc"`) || !strings.Contains(r.Body, "Sign in with your organisation") {
		t.Fatalf("the sign-in page has no OIDC button:\n%s", excerpt(r.Body))
	}
	b.oidcSignIn("/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "App passwords", carol)
	a := f.getAccount(carol)
	if a.PasswordHash != "" || a.Admin || a.MFA || a.Disabled {
		t.Errorf("provisioned account %+v", a)
	}
	// A second sign-in, in another browser, uses the same account.
	f.browser().oidcSignIn("/app-passwords")
	recs := f.records(carol)
	created, signIns := 0, 0
	for _, r := range recs {
		switch {
		case r.Result == "user-created" && r.Actor == "portal:"+carol:
			created++
		case r.Result == "ok" && r.Mechanism == mechOIDC && r.Protocol == "portal":
			signIns++
		}
	}
	if created != 1 || signIns != 2 {
		t.Errorf("audit: %d user-created by portal:%s, %d oidc sign-ins; want 1 and 2: %+v", created, carol, signIns, recs)
	}
	if n := f.idp.TokenRequests(testidp.GrantAuthorizationCode); n != 2 {
		t.Errorf("%d code redemptions for 2 sign-ins", n)
	}
	if strings.Contains(f.log.String(), oidcSecret) {
		t.Error("the client secret is in the log")
	}
}

// Every check of the callback and the ID token refuses, and nothing is
// created: a forged state, a callback in another browser or replayed, a
// nonce of another sign-in, another audience, an expired token, an
// unverified address, a domain not allowed, an error from the provider.
func TestOIDCSignInRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any         // SetIDClaims for carol
		tamper func(q url.Values)     // the authorization request
		back   func(cb *url.URL) bool // changes the callback; false: use another browser
		status int
		msg    string
	}{
		{name: "forged state", back: func(cb *url.URL) bool { setQuery(cb, "state", "forged"); return true },
			status: http.StatusBadRequest, msg: msgFlowExpired},
		{name: "another browser", back: func(*url.URL) bool { return false }, status: http.StatusBadRequest, msg: msgFlowExpired},
		{name: "wrong nonce", tamper: func(q url.Values) { q.Set("nonce", "another-sign-ins-nonce") },
			status: http.StatusUnauthorized, msg: msgProviderRefuse},
		{name: "other audience", claims: map[string]any{"aud": "some-other-client"}, status: http.StatusUnauthorized, msg: msgProviderRefuse},
		{name: "expired", claims: map[string]any{"exp": time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).Unix()},
			status: http.StatusUnauthorized, msg: msgProviderRefuse},
		{name: "other issuer", claims: map[string]any{"iss": "https://evil.example"}, status: http.StatusUnauthorized, msg: msgProviderRefuse},
		{name: "unverified address", claims: map[string]any{"email_verified": false}, status: http.StatusForbidden, msg: "not verified"},
		{name: "domain not allowed", claims: map[string]any{"email": "carol@elsewhere.example"}, status: http.StatusForbidden,
			msg: "Accounts of elsewhere.example cannot sign in here."},
		{name: "no username claim", claims: map[string]any{"email": nil}, status: http.StatusForbidden, msg: `claim "email"`},
		{name: "provider error", back: func(cb *url.URL) bool {
			setQuery(cb, "code", "")
			setQuery(cb, "error", "access_denied")
			setQuery(cb, "error_description", "Call +1 555 0100 to unlock your account")
			return true
		}, status: http.StatusUnauthorized, msg: "(access_denied)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newIDPFixture(t, func(c *OIDCConfig) { c.AllowedDomains = []string{"example.org"} })
			f.idp.AddUser(carol)
			f.idp.SignIn(carol)
			f.idp.SetIDClaims(carol, tc.claims)
			b := f.browser()
			cb := b.throughIdP("/signin/oidc", tc.tamper)
			via := b
			if tc.back != nil && !tc.back(cb) {
				via = f.browser()
			}
			r := via.callback(cb)
			expectStatus(t, r, tc.status, tc.msg)
			if strings.Contains(r.Body, "555 0100") {
				t.Error("the provider's error_description is shown")
			}
			if _, err := f.db.GetAccount(context.Background(), carol); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("an account was created: %v", err)
			}
			expectRedirect(t, via.get("/app-passwords"), "/signin")
		})
	}
}

// A callback works once: replayed (the same URL again, as a browser's
// history would), it is refused, and the code is not redeemed again.
func TestOIDCCallbackIsUsedOnce(t *testing.T) {
	f := newIDPFixture(t, nil)
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)
	b := f.browser()
	cb := b.throughIdP("/signin/oidc", nil)
	expectRedirect(t, b.callback(cb), "/app-passwords")
	b.post("/signout", nil)
	expectStatus(t, b.callback(cb), http.StatusBadRequest, msgFlowExpired)
	if n := f.idp.TokenRequests(testidp.GrantAuthorizationCode); n != 1 {
		t.Errorf("%d code redemptions, want 1", n)
	}
}

// With required_amr, a sign-in without "mfa" in amr is refused (and
// audited for the existing account), and one with it skips the TOTP step,
// even for an account with an authenticator, and opens the admin pages.
func TestOIDCRequiredAMR(t *testing.T) {
	f := newIDPFixture(t, func(c *OIDCConfig) { c.RequiredAMR = []string{"mfa"} })
	f.account(carol, "carol primary password", true)
	f.update(carol, func(a *store.Account) { a.Admin = true })
	f.enrolDirect(carol)
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)

	f.idp.SetIDClaims(carol, map[string]any{"amr": []string{"pwd"}})
	b := f.browser()
	r := b.callback(b.throughIdP("/signin/oidc", nil))
	expectStatus(t, r, http.StatusForbidden, "did not use two-step verification")
	expectRedirect(t, b.get("/app-passwords"), "/signin")
	if !hasRecord(f.records(carol), resultIdPMFAMissing, mechOIDC, "") {
		t.Errorf("the refusal is not audited: %+v", f.records(carol))
	}

	f.idp.SetIDClaims(carol, nil) // amr: pwd, mfa
	b.oidcSignIn("/app-passwords")
	expectStatus(t, b.get("/admin"), http.StatusOK, "Users")
}

// Without an amr/acr requirement, the account's own policy follows the
// provider's sign-in: its TOTP code, audited as oidc+totp.
func TestOIDCWithoutRequirementAsksTheCode(t *testing.T) {
	f := newIDPFixture(t, nil)
	f.account(carol, "carol primary password", true)
	secret, _ := f.enrolDirect(carol)
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)
	b := f.browser()
	b.oidcSignIn("/signin/code")
	expectRedirect(t, b.get("/app-passwords"), "/signin/code")
	b.enterCode(f.code(secret, 0), "/app-passwords")
	if !hasRecord(f.records(carol), "ok", "oidc+totp", "") {
		t.Errorf("the code step is not audited as oidc+totp: %+v", f.records(carol))
	}
	// An account that must enrol does so first.
	f.account("dave@example.org", "", true)
	f.idp.AddUser("dave@example.org")
	f.idp.SignIn("dave@example.org")
	f.browser().oidcSignIn("/mfa/setup")
}

// The admin role follows the configured claim at each sign-in, audited
// with the user as actor; a disabled account is refused.
func TestOIDCAdminClaim(t *testing.T) {
	f := newIDPFixture(t, func(c *OIDCConfig) {
		c.AdminClaim, c.AdminValue = "roles", "passgate.admin"
		c.RequiredACR = []string{"urn:example:mfa"}
	})
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)
	f.idp.SetIDClaims(carol, map[string]any{"roles": []string{"reader", "passgate.admin"}, "acr": "urn:example:mfa"})
	b := f.browser()
	b.oidcSignIn("/app-passwords")
	if !f.getAccount(carol).Admin {
		t.Fatal("the role claim did not make carol an admin")
	}
	expectStatus(t, b.get("/admin"), http.StatusOK, "Users")

	f.idp.SetIDClaims(carol, map[string]any{"roles": "reader", "acr": "urn:example:mfa"})
	b = f.browser()
	b.oidcSignIn("/app-passwords")
	if f.getAccount(carol).Admin {
		t.Fatal("carol stayed an admin without the role")
	}
	expectStatus(t, b.get("/admin"), http.StatusForbidden, "Administrators only")
	recs := f.records(carol)
	if !hasRecord(recs, "admin-on", "", "portal:"+carol) || !hasRecord(recs, "admin-off", "", "portal:"+carol) {
		t.Errorf("role changes not audited: %+v", recs)
	}

	f.update(carol, func(a *store.Account) { a.Disabled = true })
	b = f.browser()
	expectStatus(t, b.callback(b.throughIdP("/signin/oidc", nil)), http.StatusForbidden, msgDisabled)
	expectRedirect(t, b.get("/app-passwords"), "/signin")
}

// Starting flows is bounded per address: the pre-sessions are KV records
// anyone could otherwise pile up.
func TestOIDCFlowsPerAddressAreBounded(t *testing.T) {
	f := newIDPFixture(t, nil)
	b := f.browser()
	for i := range maxFlowsPerAddress {
		if r := b.get("/signin/oidc"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("flow %d: %d", i+1, r.StatusCode)
		}
	}
	expectStatus(t, b.get("/signin/oidc"), http.StatusTooManyRequests, msgTooManyFlows)
	f.clock.Advance(flowTTL)
	if r := b.get("/signin/oidc"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after the window: %d", r.StatusCode)
	}
}

// An unreachable provider is a clear error, and a later sign-in works
// once it answers (discovery is retried).
func TestOIDCProviderDown(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.OIDC = &OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "x", ClientSecret: "y"}
	})
	expectStatus(t, f.browser().get("/signin/oidc"), http.StatusServiceUnavailable, msgProviderDown)
}

// identity reads the claims as configured; with Google's issuer the
// hosted domain must be the organisation's.
func TestOIDCIdentityGoogleHostedDomain(t *testing.T) {
	const google = "https://accounts.google.com"
	for _, tc := range []struct {
		name    string
		allowed []string
		claims  map[string]any
		ok      bool
	}{
		{"workspace account", nil, map[string]any{"email": "ann@example.org", "hd": "example.org"}, true},
		{"personal account with a work address", nil, map[string]any{"email": "ann@example.org"}, false},
		{"other workspace", nil, map[string]any{"email": "ann@example.org", "hd": "evil.example"}, false},
		{"secondary domain of an allowed workspace", []string{"example.org", "example.net"},
			map[string]any{"email": "ann@example.net", "hd": "example.org"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &OIDCConfig{AllowedDomains: tc.allowed}
			id, refused := c.identity(tc.claims, google)
			if (refused == nil) != tc.ok {
				t.Errorf("refused %+v, want ok %v", refused, tc.ok)
			}
			if tc.ok && id.user != tc.claims["email"] {
				t.Errorf("user %q", id.user)
			}
		})
	}
	// Other issuers have no hd.
	if _, refused := (&OIDCConfig{}).identity(map[string]any{"email": "ann@example.org"}, "https://idp.example"); refused != nil {
		t.Errorf("non-Google issuer: %+v", refused)
	}
	// preferred_username as the username claim.
	id, refused := (&OIDCConfig{UsernameClaim: "preferred_username"}).identity(
		map[string]any{"preferred_username": "Ann@Example.onmicrosoft.com", "email": "x@y.z"}, "https://idp.example")
	if refused != nil || id.user != "ann@example.onmicrosoft.com" {
		t.Errorf("preferred_username: %q, %+v", id.user, refused)
	}
}

func setQuery(u *url.URL, k, v string) {
	q := u.Query()
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
}
