package account

import (
	"context"
	"errors"
	"testing"

	"github.com/passgate/passgate/store"
)

// TestSetPasswordOfDirectoryAccount: passgate keeps no primary password
// for an account its directory provisioned (the password is the
// directory's), so the service refuses to set one, from any door.
func TestSetPasswordOfDirectoryAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.CreateAccount(ctx, store.Account{Username: alice, Directory: "ldap", Created: t0}); err != nil {
		t.Fatal(err)
	}
	err := f.svc.SetPassword(ctx, root, alice, "a new password")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "password" {
		t.Fatalf("SetPassword of a directory account: %v, want a password field error", err)
	}
	if a, _ := f.st.GetAccount(ctx, alice); a.PasswordHash != "" {
		t.Fatal("a primary password was stored for a directory account")
	}
}
