package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// The portal's part of issue 9: the second factor and its replacement
// under attack, and the activity an attacker must not rewrite.

// auditCount counts user's audit records with result.
func (f *fixture) auditCount(user, result string) int {
	f.t.Helper()
	recs, err := f.db.RecentAudit(context.Background(), user, store.AuditMax)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Result == result {
			n++
		}
	}
	return n
}

// TestCodeGuessesInParallel is issue 9 item 3: 20 wrong codes sent at once
// in one pending sign-in are not all checked.
func TestCodeGuessesInParallel(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	f.enrolDirect("alice@example.org")
	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", b.base+"/signin/code", strings.NewReader(url.Values{"code": {fmt.Sprintf("%06d", i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if n := f.auditCount("alice@example.org", "bad-code"); n > authn.DefaultMaxSecondFactorFailures {
		t.Errorf("20 parallel wrong codes: %d checked (bad-code records), want at most %d", n, authn.DefaultMaxSecondFactorFailures)
	}
}

// TestCodeGuessesAcrossSignIns is issue 9 item 3: signing in again with
// the password does not give more guesses; after the lockout even the
// right code is refused until its window ends, and the user sees the
// wrong codes in the account's activity.
func TestCodeGuessesAcrossSignIns(t *testing.T) {
	f := newFixture(t, nil)
	// Limits per address high enough that only the account's
	// second-factor lockout stops the guesses.
	f.guard.Limits = authn.Limits{MaxPerAccountAddress: 1000, MaxPerAddress: 1000}
	f.account("alice@example.org", alicePW, true)
	secret, _ := f.enrolDirect("alice@example.org")
	wrong := 0
	for range 6 {
		b := f.browser()
		b.signIn("alice@example.org", alicePW, "/signin/code")
		for range 4 {
			r := b.enterCode("000000", "")
			if r.StatusCode == http.StatusUnauthorized && strings.Contains(r.Body, "not right") {
				wrong++
			}
		}
	}
	if wrong > authn.DefaultMaxSecondFactorFailures {
		t.Errorf("24 wrong codes over 6 sign-ins: %d checked, want at most %d", wrong, authn.DefaultMaxSecondFactorFailures)
	}
	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	r := b.enterCode(f.code(secret, 0), "")
	expectStatus(t, r, http.StatusTooManyRequests, "Too many wrong codes")
	f.clock.Advance(authn.DefaultSecondFactorWindow)
	b = f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	b.enterCode(f.code(secret, 0), "/app-passwords")
	page := b.get("/account")
	expectStatus(t, page, http.StatusOK, "Failed attempts", "wrong code")
}

// TestRecoveryCodeCostsOneHash is issue 9 item 4 through the portal: a
// wrong recovery code costs no argon2id, a right one exactly one, counted
// by the Verifier (so inside its concurrency cap and its figures).
func TestRecoveryCodeCostsOneHash(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	_, codes := f.enrolDirect("alice@example.org")
	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	before := f.v.HashEvaluations()
	expectStatus(t, b.enterCode("abcde-fghij", ""), http.StatusUnauthorized, "not right")
	if n := f.v.HashEvaluations() - before; n != 0 {
		t.Errorf("a wrong recovery code cost %d argon2id, want 0", n)
	}
	before = f.v.HashEvaluations()
	b.enterCode(codes[2], "/app-passwords")
	if n := f.v.HashEvaluations() - before; n != 1 {
		t.Errorf("a right recovery code cost %d argon2id in the Verifier, want 1", n)
	}
}

// replaceForm is the form that replaces an enrolled authenticator.
func replaceForm(password, current, next string) url.Values {
	v := url.Values{"code": {next}}
	if password != "" {
		v.Set("password", password)
	}
	if current != "" {
		v.Set("current_code", current)
	}
	return v
}

// TestReplaceAuthenticatorNeedsCodeAndPassword is issue 9 item 9: a
// signed-in session alone cannot replace the authenticator; it takes the
// password and the current code (or a recovery code), the code counts in
// the second-factor limits, and the user sees the change in the activity.
func TestReplaceAuthenticatorNeedsCodeAndPassword(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice@example.org", alicePW, true)
	old, codes := f.enrolDirect("alice@example.org")
	b := f.browser()
	b.signIn("alice@example.org", alicePW, "/signin/code")
	b.enterCode(f.code(old, 0), "/app-passwords")
	f.clock.Advance(totpPeriod * time.Second)
	enrolled := f.getAccount("alice@example.org").TOTP.SecretEnc

	page := b.get("/mfa/setup")
	expectStatus(t, page, http.StatusOK, "Replace your authenticator", `name="current_code"`, `name="password"`)
	next := strings.ReplaceAll(textOf(t, reSecret, page.Body), " ", "")
	for _, tc := range []struct {
		name string
		form url.Values
		msg  string
	}{
		{"new code only", replaceForm("", "", f.code(next, 0)), "current password"},
		{"no password", replaceForm("", f.code(old, 0), f.code(next, 0)), "current password"},
		{"wrong password", replaceForm("not the password", f.code(old, 0), f.code(next, 0)), "password is not right"},
		{"no current code", replaceForm(alicePW, "", f.code(next, 0)), "code from your current authenticator"},
		{"wrong current code", replaceForm(alicePW, "000000", f.code(next, 0)), "code from your current authenticator"},
		{"wrong new code", replaceForm(alicePW, f.code(old, 0), "000000"), "That code is not right"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/mfa/setup", tc.form)
			if r.StatusCode == http.StatusOK || !strings.Contains(r.Body, tc.msg) {
				t.Fatalf("status %d, want a refusal saying %q:\n%s", r.StatusCode, tc.msg, excerpt(r.Body))
			}
			if got := f.getAccount("alice@example.org").TOTP.SecretEnc; string(got) != string(enrolled) {
				t.Fatal("the authenticator was replaced")
			}
		})
	}
	if n := f.auditCount("alice@example.org", "bad-code"); n != 1 {
		t.Errorf("%d bad-code records after one wrong current code, want 1", n)
	}
	// With the password and a recovery code instead of the current code.
	f.clock.Advance(totpPeriod * time.Second)
	r := b.post("/mfa/setup", replaceForm(alicePW, codes[0], f.code(next, 0)))
	expectStatus(t, r, http.StatusOK, "Save your recovery codes")
	a := f.getAccount("alice@example.org")
	if string(a.TOTP.SecretEnc) == string(enrolled) || a.TOTP.RecoveryLeft() != authn.RecoveryCodes || len(a.TOTP.Recovery) != authn.RecoveryCodes {
		t.Errorf("after the replacement: %+v", a.TOTP)
	}
	if n := f.auditCount("alice@example.org", "mfa-replaced"); n != 1 {
		t.Errorf("%d mfa-replaced records, want 1", n)
	}
	expectStatus(t, b.get("/account"), http.StatusOK, "authenticator replaced")
	// The old authenticator no longer signs in; the new one does.
	f.clock.Advance(totpPeriod * time.Second)
	b2 := f.browser()
	b2.signIn("alice@example.org", alicePW, "/signin/code")
	expectStatus(t, b2.enterCode(f.code(old, 0), ""), http.StatusUnauthorized, "not right")
	b2.enterCode(f.code(next, 0), "/app-passwords")
}

// TestActivityKeepsOwnSignIns is issue 9 item 13: 110 failed mail logins
// from one address do not push the user's own sign-in off the account
// page.
func TestActivityKeepsOwnSignIns(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	for i := range 110 {
		_, err := f.guard.Verify(context.Background(), authn.Attempt{Username: "bob@example.org",
			Secret: fmt.Sprint("guess ", i), Protocol: store.ScopeIMAP, RemoteIP: netip.MustParseAddr("203.0.113.9")})
		if err != nil {
			t.Fatal(err)
		}
	}
	page := b.get("/account")
	expectStatus(t, page, http.StatusOK, "203.0.113.9")
	if !strings.Contains(page.Body, `<span class="badge ok">ok</span>`) {
		t.Errorf("the account page lost the user's own sign-in:\n%s", excerpt(page.Body))
	}
}
