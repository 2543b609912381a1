package account

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

func TestCreateAppPassword(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	ctx := context.Background()
	exp := t0.Add(24 * time.Hour)
	np, err := f.svc.CreateAppPassword(ctx, root, " Alice@Example.com", "  Outlook ", AppPasswordOptions{Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if np.Name != "Outlook" || !slices.Equal(np.Scopes, store.AllScopes) || !np.Created.Equal(t0) || np.ID == "" {
		t.Errorf("CreateAppPassword = %+v; want name Outlook, all scopes, created %v", np, t0)
	}
	p := f.stored(t, alice, np.ID)
	secret := authn.NormalizeSecret(np.Password)
	if strings.Contains(p.Verifier, secret) || bytes.Contains(p.Tag, []byte(secret)) {
		t.Error("stored app password contains the secret")
	}
	if p.Username != alice || p.Name != "Outlook" || !p.Expires.Equal(exp) || !p.Created.Equal(t0) {
		t.Errorf("stored %+v", p)
	}
	if r := f.login(t, alice, np.Password); r != authn.OK {
		t.Errorf("login with the new password: %v, want ok", r)
	}

	// Scopes are deduplicated and ordered; networks are masked.
	np2, err := f.svc.CreateAppPassword(ctx, root, alice, "phone", AppPasswordOptions{
		Scopes:    []store.Scope{store.ScopeSMTP, store.ScopeSMTP},
		AllowFrom: []netip.Prefix{netip.MustParsePrefix("192.0.2.77/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	p = f.stored(t, alice, np2.ID)
	if !slices.Equal(p.Scopes, []store.Scope{store.ScopeSMTP}) || !p.Expires.IsZero() ||
		!slices.Equal(p.AllowFrom, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}) {
		t.Errorf("stored %+v; want scopes [smtp], no expiry, 192.0.2.0/24", p)
	}
	np3, err := f.svc.CreateAppPassword(ctx, root, alice, "both", AppPasswordOptions{Scopes: []store.Scope{store.ScopeSMTP, store.ScopeIMAP}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Scope{store.ScopeIMAP, store.ScopeSMTP}; !slices.Equal(np3.Scopes, want) {
		t.Errorf("scopes %v, want %v", np3.Scopes, want)
	}
}

func TestCreateAppPasswordInvalid(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	f.appPassword(t, alice, "Outlook")
	for _, tc := range []struct {
		name, user, pwName string
		o                  AppPasswordOptions
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
		{name: "unknown scope", user: alice, pwName: "x", o: AppPasswordOptions{Scopes: []store.Scope{"nntp"}}, wantErr: `scopes: unknown scope "nntp"`},
		{name: "empty scopes", user: alice, pwName: "x", o: AppPasswordOptions{Scopes: []store.Scope{}}, wantErr: "scopes: at least one"},
		{name: "expired", user: alice, pwName: "x", o: AppPasswordOptions{Expires: t0}, wantErr: "expires: "},
		{name: "invalid network", user: alice, pwName: "x", o: AppPasswordOptions{AllowFrom: []netip.Prefix{{}}}, wantErr: "allow-from: entry 1"},
		{name: "invalid username", user: "a b", pwName: "x", wantErr: "username: "},
		{name: "unknown account", user: "nobody@example.com", pwName: "x", wantErr: `username: no account "nobody@example.com"`, wantIs: store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.st.calls
			np, err := f.svc.CreateAppPassword(context.Background(), root, tc.user, tc.pwName, tc.o)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("CreateAppPassword = %+v, %v; want error starting %q", np, err, tc.wantErr)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a FieldError", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tc.wantIs)
			}
			if f.st.calls != before {
				t.Error("invalid request reached the store")
			}
		})
	}
	// 64 characters (not bytes) is fine.
	if _, err := f.svc.CreateAppPassword(context.Background(), root, alice, strings.Repeat("é", 64), AppPasswordOptions{}); err != nil {
		t.Errorf("64-character name: %v", err)
	}
}

func TestCreateAppPasswordRetriesCollision(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	f.st.fail, f.st.failN = store.ErrExists, 2
	np, err := f.svc.CreateAppPassword(context.Background(), root, alice, "laptop", AppPasswordOptions{})
	if err != nil {
		t.Fatalf("after 2 collisions: %v", err)
	}
	if f.st.calls != 3 {
		t.Errorf("store called %d times, want 3", f.st.calls)
	}
	if r := f.login(t, alice, np.Password); r != authn.OK {
		t.Errorf("login = %v, want ok", r)
	}

	f.st.fail, f.st.failN, f.st.calls = store.ErrExists, -1, 0
	if _, err := f.svc.CreateAppPassword(context.Background(), root, alice, "phone", AppPasswordOptions{}); !errors.Is(err, store.ErrExists) {
		t.Errorf("always colliding: err = %v, want ErrExists", err)
	}
	if f.st.calls != mintAttempts {
		t.Errorf("store called %d times, want %d", f.st.calls, mintAttempts)
	}

	f.st.fail, f.st.failN, f.st.calls = store.ErrUnavailable, 1, 0
	if _, err := f.svc.CreateAppPassword(context.Background(), root, alice, "phone", AppPasswordOptions{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("store down: err = %v, want ErrUnavailable", err)
	}
	if f.st.calls != 1 {
		t.Errorf("store down: called %d times, want 1 (no retry)", f.st.calls)
	}
	// Failed creations are not audited.
	for _, r := range f.records(t, alice) {
		if r.Result == ResultAppPasswordCreated && r.AppPasswordName != "laptop" {
			t.Errorf("failed creation audited: %+v", r)
		}
	}
}

func TestRevokeAppPassword(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	outlook := f.appPassword(t, alice, "Outlook")
	phone := f.appPassword(t, alice, "Phone")
	// An app password named like another's ID: the ID wins.
	tricky := f.appPassword(t, alice, outlook.ID)

	got, err := f.svc.RevokeAppPassword(ctx, root, alice, outlook.ID)
	if err != nil || got.ID != outlook.ID {
		t.Fatalf("revoke by ID = %+v, %v; want %s", got, err, outlook.ID)
	}
	if got, err := f.svc.RevokeAppPassword(ctx, root, "ALICE@example.com", "phone"); err != nil || got.ID != phone.ID {
		t.Fatalf("revoke by name = %+v, %v; want %s", got, err, phone.ID)
	}
	for _, s := range []string{outlook.Password, phone.Password} {
		if r := f.login(t, alice, s); r != authn.BadSecret {
			t.Errorf("revoked password logs in: %v", r)
		}
	}
	if r := f.login(t, alice, tricky.Password); r != authn.OK {
		t.Errorf("the other app password: %v, want ok", r)
	}
	if _, err := f.svc.RevokeAppPassword(ctx, root, alice, "Phone"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"Phone"`) {
		t.Errorf("revoking again: %v, want ErrNotFound naming it", err)
	}
	if _, err := f.svc.RevokeAppPassword(ctx, root, "nobody@example.com", "x"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "nobody@example.com") {
		t.Errorf("unknown account: %v", err)
	}
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, u := range []string{alice, bob} {
		f.user(t, u, "", false)
		f.appPassword(t, u, "one")
		f.appPassword(t, u, "two")
	}
	if _, err := f.svc.RevokeAll(ctx, root, []string{alice, "ghost@example.com"}); !errors.Is(err, store.ErrNotFound) ||
		!strings.Contains(err.Error(), "ghost@example.com") || !strings.Contains(err.Error(), "nothing was revoked") {
		t.Errorf("with an unknown account: %v", err)
	}
	if l, _ := f.svc.ListAppPasswords(ctx, alice); len(l) != 2 {
		t.Errorf("a failed revoke-all deleted something: %d left", len(l))
	}
	n, err := f.svc.RevokeAll(ctx, root, []string{alice, "Alice@Example.com", bob})
	if err != nil || n != 4 {
		t.Fatalf("RevokeAll = %d, %v; want 4", n, err)
	}
	for _, u := range []string{alice, bob} {
		recs := f.records(t, u)
		if last := recs[len(recs)-1]; last.Result != ResultAppPasswordsDeleted {
			t.Errorf("%s: last record %+v", u, last)
		}
	}
	if _, err := f.svc.RevokeAll(ctx, root, nil); err == nil {
		t.Error("RevokeAll of no account succeeded")
	}
}
