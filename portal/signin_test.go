package portal

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

func TestSignInPassword(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	np, err := f.setup().CreateAppPassword(context.Background(), testActor, "bob@example.org", "Phone", account.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pw string
		status         int
		msg            string
	}{
		{"wrong password", "bob@example.org", "not the password", http.StatusUnauthorized, msgBadCredentials},
		{"unknown user", "nobody@example.org", bobPW, http.StatusUnauthorized, msgBadCredentials},
		{"empty password", "bob@example.org", "", http.StatusUnauthorized, msgBadCredentials},
		{"app password never signs in", "bob@example.org", np.Password, http.StatusUnauthorized, msgBadCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := f.browser()
			r := b.post("/signin", url.Values{"username": {tc.user}, "password": {tc.pw}})
			expectStatus(t, r, tc.status, tc.msg)
			if len(r.Cookies()) != 0 {
				t.Errorf("a refused sign-in set cookies: %v", r.Cookies())
			}
			expectRedirect(t, b.get("/app-passwords"), "/signin")
		})
	}
	t.Run("right password", func(t *testing.T) {
		b := f.browser()
		expectStatus(t, b.get("/signin"), http.StatusOK, "Sign in", `autocomplete="current-password"`)
		b.signIn(" BOB@example.org ", bobPW, "/app-passwords")
		expectStatus(t, b.get("/app-passwords"), http.StatusOK, "Your app passwords", "Phone")
		expectRedirect(t, b.get("/"), "/app-passwords")
		expectRedirect(t, b.get("/signin"), "/app-passwords")
	})
	if strings.Contains(f.log.String(), bobPW) || strings.Contains(f.log.String(), np.Password) {
		t.Error("a password appears in the log")
	}
}

func TestSignInDisabledAndRateLimited(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		f := newFixture(t, nil)
		f.account("bob@example.org", bobPW, false)
		f.update("bob@example.org", func(a *store.Account) { a.Disabled = true })
		r := f.browser().post("/signin", url.Values{"username": {"bob@example.org"}, "password": {bobPW}})
		expectStatus(t, r, http.StatusForbidden, msgDisabled)
	})
	t.Run("rate limited", func(t *testing.T) {
		limited := authFunc(func(ctx context.Context, a authn.Attempt) (authn.Decision, error) {
			if a.Protocol != ProtocolPortal {
				t.Errorf("protocol %q, want portal", a.Protocol)
			}
			return authn.Decision{Result: authn.RateLimited, Username: "bob@example.org"}, nil
		})
		f := newFixture(t, func(s *Server) { s.Auth = limited })
		f.account("bob@example.org", bobPW, false)
		r := f.browser().post("/signin", url.Values{"username": {"bob@example.org"}, "password": {bobPW}})
		expectStatus(t, r, http.StatusTooManyRequests, msgRateLimited)
	})
}

type authFunc func(context.Context, authn.Attempt) (authn.Decision, error)

func (f authFunc) Verify(ctx context.Context, a authn.Attempt) (authn.Decision, error) {
	return f(ctx, a)
}

// TestEnrolment: an account that must use MFA cannot go anywhere before it
// enrolled; enrolment shows a QR code and the key, confirms one code,
// stores the secret sealed and shows ten recovery codes once.
func TestEnrolment(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/mfa/setup")
	expectRedirect(t, b.get("/app-passwords"), "/mfa/setup")
	expectRedirect(t, b.get("/account"), "/mfa/setup")

	r := b.get("/mfa/setup")
	expectStatus(t, r, http.StatusOK, "Scan this code", "must use two-step verification", `src="/mfa/qr.png"`)
	secret := strings.ReplaceAll(textOf(t, reSecret, r.Body), " ", "")
	if len(secret) != 32 {
		t.Fatalf("secret %q is not 160 bits of base32", secret)
	}
	if !strings.Contains(r.Body, "otpauth://totp/") {
		t.Error("no otpauth link")
	}
	// Reloading keeps the same secret (the QR code must match the text).
	if again := strings.ReplaceAll(textOf(t, reSecret, b.get("/mfa/setup").Body), " ", ""); again != secret {
		t.Errorf("secret changed on reload: %q, then %q", secret, again)
	}
	qr := b.get("/mfa/qr.png")
	if qr.StatusCode != 200 || qr.Header.Get("Content-Type") != "image/png" || qr.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("qr: %d %q %q", qr.StatusCode, qr.Header.Get("Content-Type"), qr.Header.Get("Cache-Control"))
	}
	if img, err := png.Decode(bytes.NewReader([]byte(qr.Body))); err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("qr is not a PNG of at least 200px: %v", err)
	}

	expectStatus(t, b.post("/mfa/setup", url.Values{"code": {"000000"}}), http.StatusBadRequest, "That code is not right")
	if f.getAccount("alice@example.org").TOTP != nil {
		t.Fatal("a wrong code enrolled")
	}
	r = b.post("/mfa/setup", url.Values{"code": {f.code(secret, 0)}})
	expectStatus(t, r, http.StatusOK, "Save your recovery codes", "shown only now")
	codes := reCodes.FindAllStringSubmatch(r.Body, -1)
	if len(codes) != authn.RecoveryCodes {
		t.Fatalf("%d recovery codes on the page, want %d", len(codes), authn.RecoveryCodes)
	}
	a := f.getAccount("alice@example.org")
	if a.TOTP == nil || !a.MFA || len(a.TOTP.Recovery) != authn.RecoveryCodes || len(a.TOTP.RecoveryHashes) != 0 {
		t.Fatalf("account after enrolment: %+v", a)
	}
	if bytes.Contains(a.TOTP.SecretEnc, []byte(secret)) {
		t.Error("the TOTP secret is stored in clear")
	}
	for i, rc := range a.TOTP.Recovery {
		if !strings.HasPrefix(rc.Hash, "$argon2id$") || strings.Contains(rc.Hash, codes[i][1]) || len(rc.Tag) != authn.TagLen {
			t.Errorf("recovery code %d kept as %+v", i, rc)
		}
	}
	// The sign-in is complete; the codes are not shown again.
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "Your app passwords")
	if r := b.get("/account"); strings.Contains(r.Body, codes[0][1]) {
		t.Error("recovery codes shown again")
	}
	// The enrolment code's step is used up: it cannot sign in again.
	b2 := f.browser()
	b2.signIn("alice@example.org", alicePW, "/signin/code")
	expectStatus(t, b2.enterCode(f.code(secret, 0), ""), http.StatusUnauthorized, "already used")
	b2.enterCode(f.code(secret, 30*time.Second), "/app-passwords")
}

func TestTOTPSignIn(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	secret, _ := f.enrolDirect("alice@example.org")

	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	// The password alone opens nothing.
	for _, p := range []string{"/app-passwords", "/account", "/mfa/setup"} {
		expectRedirect(t, b.get(p), "/signin/code")
	}
	expectStatus(t, b.get("/signin/code"), http.StatusOK, "Two-step verification", `autocomplete="one-time-code"`)
	expectStatus(t, b.enterCode("123456", ""), http.StatusUnauthorized, "not right")
	code := f.code(secret, 0)
	b.enterCode(code, "/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "Your app passwords")

	t.Run("replay refused", func(t *testing.T) {
		b := f.browser()
		b.signIn("alice@example.org", alicePW, "/signin/code")
		expectStatus(t, b.enterCode(code, ""), http.StatusUnauthorized, "already used")
		expectRedirect(t, b.get("/app-passwords"), "/signin/code")
		f.clock.Advance(totpPeriod * time.Second)
		b.enterCode(f.code(secret, 0), "/app-passwords")
	})
	t.Run("one step of skew", func(t *testing.T) {
		f.clock.Advance(5 * totpPeriod * time.Second)
		b := f.browser()
		b.signIn("alice@example.org", alicePW, "/signin/code")
		expectStatus(t, b.enterCode(f.code(secret, -2*totpPeriod*time.Second), ""), http.StatusUnauthorized, "not right")
		b.enterCode(f.code(secret, -totpPeriod*time.Second), "/app-passwords")
	})
	t.Run("too many wrong codes", func(t *testing.T) {
		f.clock.Advance(authn.DefaultSecondFactorWindow) // forget the wrong codes above
		b := f.browser()
		b.signIn("alice@example.org", alicePW, "/signin/code")
		// The password step (it confirms the password) and each wrong
		// code count against the account from this address; the limit
		// of 5 ends the sign-in.
		for i := 1; i < authn.DefaultMaxPerAccountAddress; i++ {
			expectStatus(t, b.enterCode("000000", ""), http.StatusUnauthorized, "not right")
		}
		expectStatus(t, b.enterCode("000000", ""), http.StatusTooManyRequests, "Too many wrong codes")
		f.clock.Advance(totpPeriod * time.Second)
		// The session is gone: even the right code needs the password again.
		expectRedirect(t, b.enterCode(f.code(secret, 0), ""), "/signin")
	})
	t.Run("pending sign-in expires", func(t *testing.T) {
		f.clock.Advance(authn.DefaultFailWindow) // the address is no longer blocked
		b := f.browser()
		b.signIn("alice@example.org", alicePW, "/signin/code")
		f.clock.Advance(pendingTTL + time.Second)
		expectRedirect(t, b.enterCode(f.code(secret, 0), ""), "/signin")
	})
}

func TestRecoveryCodeSingleUse(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	_, codes := f.enrolDirect("alice@example.org")

	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	b.enterCode(strings.ToUpper(codes[3]), "/app-passwords") // case and dash do not matter
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "You used a recovery code; 9 are left.")
	if n := f.getAccount("alice@example.org").TOTP.RecoveryLeft(); n != authn.RecoveryCodes-1 {
		t.Fatalf("%d recovery codes left, want %d", n, authn.RecoveryCodes-1)
	}

	b2 := f.browser()
	b2.signIn("alice@example.org", alicePW, "/signin/code")
	expectStatus(t, b2.enterCode(codes[3], ""), http.StatusUnauthorized, "already used")
	b2.enterCode(strings.ReplaceAll(codes[4], "-", " "), "/app-passwords")
	if n := f.getAccount("alice@example.org").TOTP.RecoveryLeft(); n != authn.RecoveryCodes-2 {
		t.Fatalf("%d recovery codes left, want %d", n, authn.RecoveryCodes-2)
	}
	expectStatus(t, b2.get("/account"), http.StatusOK, "Recovery codes left: 8.")
	recs, err := f.db.RecentAudit(context.Background(), "alice@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Mechanism != "password+recovery-code" || recs[0].Result != "ok" || recs[1].Result != "bad-code" {
		t.Errorf("audit: %+v", recs[:2])
	}
}

func TestSignOutAndExpiry(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)

	t.Run("sign out", func(t *testing.T) {
		b := f.browser()
		b.signIn("bob@example.org", bobPW, "/app-passwords")
		cookies := b.c.Jar.Cookies(mustURL(t, f.ts.URL))
		r := b.post("/signout", nil)
		expectRedirect(t, r, "/signin?signed-out")
		if c := r.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
			t.Errorf("sign-out cookies: %v", c)
		}
		// The old cookie is dead on the server too.
		b2 := f.browser()
		b2.c.Jar.SetCookies(mustURL(t, f.ts.URL), cookies)
		expectRedirect(t, b2.get("/app-passwords"), "/signin")
		expectStatus(t, b.get("/signin?signed-out"), http.StatusOK, "You have signed out.")
	})
	t.Run("expiry", func(t *testing.T) {
		b := f.browser()
		b.signIn("bob@example.org", bobPW, "/app-passwords")
		f.clock.Advance(DefaultSessionTTL - time.Minute)
		expectStatus(t, b.get("/app-passwords"), http.StatusOK)
		f.clock.Advance(2 * time.Minute)
		expectRedirect(t, b.get("/app-passwords"), "/signin")
	})
	t.Run("disabled account loses its session", func(t *testing.T) {
		b := f.browser()
		b.signIn("bob@example.org", bobPW, "/app-passwords")
		f.update("bob@example.org", func(a *store.Account) { a.Disabled = true })
		expectRedirect(t, b.get("/app-passwords"), "/signin")
		f.update("bob@example.org", func(a *store.Account) { a.Disabled = false })
		expectRedirect(t, b.get("/app-passwords"), "/signin")
	})
	t.Run("MFA reset sends to enrolment", func(t *testing.T) {
		b := f.browser()
		b.signIn("bob@example.org", bobPW, "/app-passwords")
		f.update("bob@example.org", func(a *store.Account) { a.MFA = true })
		expectRedirect(t, b.get("/app-passwords"), "/mfa/setup")
		expectStatus(t, b.get("/mfa/setup"), http.StatusOK, "must use two-step verification")
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSignInThroughGuard: portal sign-ins count against the same
// brute-force limits as mail logins and are audited by the Guard.
func TestSignInThroughGuard(t *testing.T) {
	var guard *authn.Guard
	f := newFixture(t, func(s *Server) {
		guard = &authn.Guard{Verifier: s.Verifier, Counters: &memcount.Counters{Now: s.Now},
			Audit: &authn.Auditor{Store: s.Store}, Limits: authn.Limits{MaxPerAddress: 3},
			Now: s.Now, Sleep: func(context.Context, time.Duration) error { return nil }}
		s.Auth = guard
	})
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	for i := range 3 { // different secrets: the Guard counts a repeated one once
		r := b.post("/signin", url.Values{"username": {"bob@example.org"}, "password": {fmt.Sprint("wrong ", i)}})
		expectStatus(t, r, http.StatusUnauthorized, msgBadCredentials)
	}
	r := b.post("/signin", url.Values{"username": {"bob@example.org"}, "password": {bobPW}})
	expectStatus(t, r, http.StatusTooManyRequests, msgRateLimited)
	recs, err := f.db.RecentAudit(context.Background(), "bob@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0].Protocol != "portal" || recs[0].Result != "rate-limited" || recs[3].Result != "bad-secret" {
		t.Errorf("audit: %+v", recs)
	}
	expectStatus(t, b.get("/signin"), http.StatusOK) // not signed in
}

func TestEnrolTOTP(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	secret, codes, err := f.srv.EnrolTOTP(context.Background(), "Bob@Example.org")
	if err != nil {
		t.Fatal(err)
	}
	if a := f.getAccount("bob@example.org"); !a.MFA || a.TOTP == nil || len(codes) != authn.RecoveryCodes {
		t.Fatalf("account %+v, %d codes", a, len(codes))
	}
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/signin/code")
	b.enterCode(f.code(secret, 0), "/app-passwords")
	b2 := f.browser()
	b2.signIn("bob@example.org", bobPW, "/signin/code")
	b2.enterCode(codes[0], "/app-passwords")
	if _, _, err := f.srv.EnrolTOTP(context.Background(), "nobody@example.org"); err == nil {
		t.Error("enrolled an unknown user")
	}
}
