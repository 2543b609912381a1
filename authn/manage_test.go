package authn

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

func TestCreateAppPassword(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	ctx := context.Background()
	exp := t0.Add(24 * time.Hour)
	np, err := f.v.CreateAppPassword(ctx, " Alice@Example.com", "  Outlook ", nil, exp)
	if err != nil {
		t.Fatal(err)
	}
	if np.Name != "Outlook" || !slices.Equal(np.Scopes, store.AllScopes) || !np.Created.Equal(t0) || np.ID == "" {
		t.Errorf("CreateAppPassword = %+v; want name Outlook, all scopes, created %v", np, t0)
	}
	p, ok := f.st.app(alice, np.ID)
	if !ok {
		t.Fatalf("app password %s not stored", np.ID)
	}
	secret := NormalizeSecret(np.Password)
	if strings.Contains(p.Verifier, secret) || bytes.Contains(p.Tag, []byte(secret)) {
		t.Error("stored app password contains the secret")
	}
	if !bytes.Equal(p.Tag, Tag(f.st.key, alice, secret)) {
		t.Error("stored tag is not Tag(lookup key, username, normalised secret)")
	}
	if ok, err := VerifyHash(p.Verifier, []byte(secret)); !ok || err != nil {
		t.Errorf("stored verifier does not verify the normalised secret: %v, %v", ok, err)
	}
	if p.Username != alice || p.Name != "Outlook" || !p.Expires.Equal(exp) || !p.Created.Equal(t0) {
		t.Errorf("stored %+v", p)
	}
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != OK || d.AppPasswordID != np.ID || d.AppPasswordName != "Outlook" {
		t.Errorf("Verify with the new password = %+v, want OK", d)
	}

	// Scopes are deduplicated and ordered.
	np2, err := f.v.CreateAppPassword(ctx, alice, "phone", []store.Scope{store.ScopeSMTP, store.ScopeSMTP}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := f.st.app(alice, np2.ID); !slices.Equal(p.Scopes, []store.Scope{store.ScopeSMTP}) || !p.Expires.IsZero() {
		t.Errorf("stored %+v; want scopes [smtp], no expiry", p)
	}
	np3, err := f.v.CreateAppPassword(ctx, alice, "both", []store.Scope{store.ScopeSMTP, store.ScopeIMAP}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(np3.Scopes, store.AllScopes) {
		t.Errorf("scopes %v, want %v", np3.Scopes, store.AllScopes)
	}
}

func TestCreateAppPasswordInvalid(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	f.appPassword(t, alice, "Outlook")
	for _, tc := range []struct {
		name, user, pwName string
		scopes             []store.Scope
		expires            time.Time
		wantErr            string
		wantIs             error
	}{
		{name: "no name", user: alice, pwName: "   ", wantErr: "name: required"},
		{name: "long name", user: alice, pwName: strings.Repeat("x", 65), wantErr: "name: longer than 64"},
		{name: "control character", user: alice, pwName: "bad\x1bname", wantErr: "name: contains unprintable"},
		{name: "newline", user: alice, pwName: "two\nlines", wantErr: "name: contains unprintable"},
		{name: "invalid UTF-8", user: alice, pwName: "bad\xff", wantErr: "name: not valid UTF-8"},
		{name: "duplicate name", user: alice, pwName: "Outlook", wantErr: `name: an app password named "Outlook" already exists`, wantIs: store.ErrExists},
		{name: "duplicate name other case", user: alice, pwName: "outlook", wantErr: `name: an app password named "Outlook" already exists`, wantIs: store.ErrExists},
		{name: "unknown scope", user: alice, pwName: "x", scopes: []store.Scope{"pop3"}, wantErr: `scopes: unknown scope "pop3"`},
		{name: "empty scopes", user: alice, pwName: "x", scopes: []store.Scope{}, wantErr: "scopes: at least one"},
		{name: "expired", user: alice, pwName: "x", expires: t0, wantErr: "expires: "},
		{name: "invalid username", user: "a b", pwName: "x", wantErr: "username: "},
		{name: "unknown account", user: "nobody@example.com", pwName: "x", wantErr: `username: no account "nobody@example.com"`, wantIs: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.st.createAppCalls
			np, err := f.v.CreateAppPassword(context.Background(), tc.user, tc.pwName, tc.scopes, tc.expires)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("CreateAppPassword = %+v, %v; want error starting %q", np, err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tc.wantIs)
			}
			if f.st.createAppCalls != before {
				t.Error("invalid request reached the store")
			}
		})
	}
	// 64 characters (not bytes) is fine.
	if _, err := f.v.CreateAppPassword(context.Background(), alice, strings.Repeat("é", 64), nil, time.Time{}); err != nil {
		t.Errorf("64-character name: %v", err)
	}
}

func TestCreateAppPasswordRetriesCollision(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	f.st.set(func(m *memStore) { m.failCreateApp, m.failCreateAppN = store.ErrExists, 2 })
	np, err := f.v.CreateAppPassword(context.Background(), alice, "laptop", nil, time.Time{})
	if err != nil {
		t.Fatalf("after 2 collisions: %v", err)
	}
	if f.st.createAppCalls != 3 {
		t.Errorf("store called %d times, want 3", f.st.createAppCalls)
	}
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != OK {
		t.Errorf("Verify = %+v, want OK", d)
	}

	f.st.set(func(m *memStore) { m.failCreateApp, m.failCreateAppN, m.createAppCalls = store.ErrExists, -1, 0 })
	if _, err := f.v.CreateAppPassword(context.Background(), alice, "phone", nil, time.Time{}); !errors.Is(err, store.ErrExists) {
		t.Errorf("always colliding: err = %v, want ErrExists", err)
	}
	if f.st.createAppCalls != createAttempts {
		t.Errorf("store called %d times, want %d", f.st.createAppCalls, createAttempts)
	}

	f.st.set(func(m *memStore) { m.failCreateApp, m.failCreateAppN, m.createAppCalls = store.ErrUnavailable, 1, 0 })
	if _, err := f.v.CreateAppPassword(context.Background(), alice, "phone", nil, time.Time{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("store down: err = %v, want ErrUnavailable", err)
	}
	if f.st.createAppCalls != 1 {
		t.Errorf("store down: called %d times, want 1 (no retry)", f.st.createAppCalls)
	}
}

func TestCreateAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.v.CreateAccount(ctx, "Bob@Example.com", "Bob Primary 22", true); err != nil {
		t.Fatal(err)
	}
	a, err := f.st.GetAccount(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !a.MFA || a.Disabled || !a.Created.Equal(t0) || !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("stored %+v", a)
	}
	if strings.Contains(a.PasswordHash, "Bob Primary 22") {
		t.Error("stored hash contains the password")
	}
	if err := f.v.CreateAccount(ctx, bob, "", false); !errors.Is(err, store.ErrExists) || !strings.HasPrefix(err.Error(), "username: ") {
		t.Errorf("duplicate: err = %v, want username: ... ErrExists", err)
	}
	if err := f.v.CreateAccount(ctx, dave, "", false); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.st.GetAccount(ctx, dave); a.PasswordHash != "" || a.MFA {
		t.Errorf("account without primary password: stored %+v", a)
	}
	for _, tc := range []struct{ name, user, pw, wantErr string }{
		{"short password", carol, "Short7!", "password: must be at least 8"},
		{"long password", carol, strings.Repeat("x", MaxSecretLen+1), "password: must be at most"},
		{"invalid username", "a*b", "Long enough 1", "username: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.v.CreateAccount(ctx, tc.user, tc.pw, false)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q contains the password", err)
			}
			if _, err := f.st.GetAccount(ctx, carol); !errors.Is(err, store.ErrNotFound) {
				t.Error("invalid account was stored")
			}
		})
	}
}

func TestSetPrimaryPassword(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(t, alice, "Old Password 1", false)
	if err := f.v.SetPrimaryPassword(ctx, "ALICE@example.com", "New Password 2"); err != nil {
		t.Fatal(err)
	}
	if d := f.verifyOnce(t, attempt(alice, "Old Password 1")); d.Result != BadSecret {
		t.Errorf("old password: %+v, want BadSecret", d)
	}
	if d := f.verifyOnce(t, attempt(alice, "New Password 2")); d.Result != OK {
		t.Errorf("new password: %+v, want OK", d)
	}
	// An account without a primary password can get one.
	f.account(t, dave, "", false)
	if err := f.v.SetPrimaryPassword(ctx, dave, "Dave Primary 4"); err != nil {
		t.Fatal(err)
	}
	if d := f.verifyOnce(t, attempt(dave, "Dave Primary 4")); d.Result != OK {
		t.Errorf("dave's new password: %+v, want OK", d)
	}
	if err := f.v.SetPrimaryPassword(ctx, "nobody@example.com", "Long enough 1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: err = %v, want ErrNotFound", err)
	}
	if err := f.v.SetPrimaryPassword(ctx, alice, "short"); err == nil || !strings.HasPrefix(err.Error(), "password: ") {
		t.Errorf("short password: err = %v, want password: ...", err)
	}
	if d := f.verifyOnce(t, attempt(alice, "New Password 2")); d.Result != OK {
		t.Errorf("rejected change altered the password: %+v", d)
	}
}
