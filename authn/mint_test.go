package authn

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// testAppPassword is an app password a test created: its ID and the secret
// as shown to the user.
type testAppPassword struct{ ID, Name, Password string }

// createAccount stores an account with primary (if not "") hashed by v.
// Tests of the login decision use it; the checks and audit of a real
// account creation are authn/account's.
func createAccount(ctx context.Context, v *Verifier, user, primary string, mfa bool) error {
	a := store.Account{Username: user, MFA: mfa, Created: v.now()}
	if primary != "" {
		h, err := v.HashPassword(primary)
		if err != nil {
			return err
		}
		a.PasswordHash = h
	}
	return v.Store.CreateAccount(ctx, a)
}

// createAppPassword mints an app password with v and stores it with the
// given scopes (nil: all), expiry (zero: never) and networks.
func createAppPassword(ctx context.Context, v *Verifier, user, name string, scopes []store.Scope, expires time.Time, allow ...netip.Prefix) (testAppPassword, error) {
	p, secret, err := v.MintAppPassword(ctx, user)
	if err != nil {
		return testAppPassword{}, err
	}
	if scopes == nil {
		scopes = store.AllScopes
	}
	p.Name, p.Scopes, p.Created, p.Expires, p.AllowFrom = name, scopes, v.now(), expires, allow
	if err := v.Store.CreateAppPassword(ctx, p); err != nil {
		return testAppPassword{}, err
	}
	return testAppPassword{ID: p.ID, Name: name, Password: secret}, nil
}

func TestMintAppPassword(t *testing.T) {
	f := newFixture(t)
	before := f.v.HashEvaluations()
	p, secret, err := f.v.MintAppPassword(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.v.HashEvaluations() - before; n != 1 {
		t.Errorf("minting ran %d argon2id evaluations, want 1", n)
	}
	normalized := NormalizeSecret(secret)
	if len(normalized) != AppPasswordLen || p.ID == "" || p.Username != alice {
		t.Fatalf("minted %q, record %+v", secret, p)
	}
	if strings.Contains(p.Verifier, normalized) || bytes.Contains(p.Tag, []byte(normalized)) {
		t.Error("the record contains the secret")
	}
	if !bytes.Equal(p.Tag, Tag(f.st.key, alice, normalized)) {
		t.Error("tag is not Tag(lookup key, username, normalised secret)")
	}
	if ok, err := VerifyHash(p.Verifier, []byte(normalized)); !ok || err != nil {
		t.Errorf("verifier does not verify the normalised secret: %v, %v", ok, err)
	}
	q, secret2, err := f.v.MintAppPassword(context.Background(), alice)
	if err != nil || q.ID == p.ID || secret2 == secret || bytes.Equal(q.Tag, p.Tag) {
		t.Errorf("two mints share an ID, secret or tag (err %v)", err)
	}
	if f.st.createAppCalls != 0 {
		t.Error("minting wrote to the store")
	}
}

func TestHashPassword(t *testing.T) {
	f := newFixture(t)
	h, err := f.v.HashPassword("Bob Primary 22")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, "Bob Primary 22") {
		t.Errorf("hash %q: want argon2id with the fixture's params, without the password", h)
	}
	if ok, err := VerifyHash(h, []byte("Bob Primary 22")); !ok || err != nil {
		t.Errorf("hash does not verify: %v, %v", ok, err)
	}
}
