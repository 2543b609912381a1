package account

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

func TestCreateUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.svc.CreateUser(ctx, root, NewUser{Username: "Bob@Example.com", Password: "Bob Primary 22", MFA: true}); err != nil {
		t.Fatal(err)
	}
	a := f.account(t, bob)
	if !a.MFA || a.Disabled || !a.Created.Equal(t0) || !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("stored %+v", a)
	}
	if strings.Contains(a.PasswordHash, "Bob Primary 22") {
		t.Error("stored hash contains the password")
	}
	if err := f.svc.CreateUser(ctx, root, NewUser{Username: bob}); !errors.Is(err, store.ErrExists) || !strings.HasPrefix(err.Error(), "username: ") {
		t.Errorf("duplicate: err = %v, want username: ... ErrExists", err)
	}
	f.user(t, dave, "", false)
	if a := f.account(t, dave); a.PasswordHash != "" || a.MFA {
		t.Errorf("account without primary password: stored %+v", a)
	}
	for _, tc := range []struct{ name, user, pw, wantErr string }{
		{"short password", carol, "Short7!", "password: must be at least 8"},
		{"long password", carol, strings.Repeat("x", authn.MaxSecretLen+1), "password: must be at most"},
		{"invalid username", "a*b", "Long enough 1", "username: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.svc.CreateUser(ctx, root, NewUser{Username: tc.user, Password: tc.pw})
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

func TestSetPassword(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "Old Password 1", false)
	if err := f.svc.SetPassword(ctx, root, "ALICE@example.com", "New Password 2"); err != nil {
		t.Fatal(err)
	}
	if r := f.login(t, alice, "Old Password 1"); r != authn.BadSecret {
		t.Errorf("old password: %v, want bad-secret", r)
	}
	if r := f.login(t, alice, "New Password 2"); r != authn.OK {
		t.Errorf("new password: %v, want ok", r)
	}
	// An account without a primary password can get one.
	f.user(t, dave, "", false)
	if err := f.svc.SetPassword(ctx, root, dave, "Dave Primary 4"); err != nil {
		t.Fatal(err)
	}
	if r := f.login(t, dave, "Dave Primary 4"); r != authn.OK {
		t.Errorf("dave's new password: %v, want ok", r)
	}
	if err := f.svc.SetPassword(ctx, root, "nobody@example.com", "Long enough 1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: err = %v, want ErrNotFound", err)
	}
	if err := f.svc.SetPassword(ctx, root, alice, "short"); err == nil || !strings.HasPrefix(err.Error(), "password: ") {
		t.Errorf("short password: err = %v, want password: ...", err)
	}
	if r := f.login(t, alice, "New Password 2"); r != authn.OK {
		t.Errorf("rejected change altered the password: %v", r)
	}
}

func TestPasswordChangeRevokesAppPasswords(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFixture(t)
		f.v.KeepAppPasswordsOnPasswordChange = keep
		f.user(t, alice, "first primary", false)
		np := f.appPassword(t, alice, "Outlook")
		if err := f.svc.SetPassword(context.Background(), root, alice, "second primary"); err != nil {
			t.Fatal(err)
		}
		want := authn.BadSecret
		if keep {
			want = authn.OK
		}
		if r := f.login(t, alice, np.Password); r != want {
			t.Errorf("keep=%v: app password after a primary change: %v, want %v", keep, r, want)
		}
		if r := f.login(t, alice, "second primary"); r != authn.OK {
			t.Errorf("keep=%v: new primary: %v, want ok", keep, r)
		}
	}
}

func TestSwitchesAndAliases(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.svc.SetMFA(ctx, root, alice, true))
	must(f.svc.SetDisabled(ctx, root, alice, true))
	must(f.svc.SetAdmin(ctx, root, alice, true))
	if a := f.account(t, alice); !a.MFA || !a.Disabled || !a.Admin {
		t.Errorf("after turning everything on: %+v", a)
	}
	must(f.svc.SetMFA(ctx, root, alice, false))
	must(f.svc.SetDisabled(ctx, root, alice, false))
	must(f.svc.SetAdmin(ctx, root, alice, false))
	if a := f.account(t, alice); a.MFA || a.Disabled || a.Admin {
		t.Errorf("after turning everything off: %+v", a)
	}
	f.enrol(t, alice)
	must(f.svc.ResetMFA(ctx, root, alice))
	if a := f.account(t, alice); a.TOTP != nil || !a.MFA {
		t.Errorf("after ResetMFA: TOTP %v, MFA %v; want the authenticator gone and MFA still required", a.TOTP, a.MFA)
	}

	al, err := f.svc.AddAlias(ctx, root, alice, "Sales@Example.com")
	must(err)
	al, err = f.svc.AddAlias(ctx, root, alice, "info@example.com")
	must(err)
	if !slices.Equal(al, []string{"info@example.com", "sales@example.com"}) {
		t.Errorf("aliases %v", al)
	}
	if al, err = f.svc.RemoveAlias(ctx, root, alice, "info@example.com"); err != nil || !slices.Equal(al, []string{"sales@example.com"}) {
		t.Errorf("after removing one: %v, %v", al, err)
	}
	if _, err := f.svc.RemoveAlias(ctx, root, alice, "info@example.com"); !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "alias: ") {
		t.Errorf("removing a missing alias: %v", err)
	}
	if _, err := f.svc.AddAlias(ctx, root, alice, "not an address"); err == nil || !strings.HasPrefix(err.Error(), "alias: ") {
		t.Errorf("adding a non-address: %v", err)
	}
	if al, err := f.svc.Aliases(ctx, alice); err != nil || !slices.Equal(al, []string{"sales@example.com"}) {
		t.Errorf("Aliases = %v, %v", al, err)
	}
	for name, err := range map[string]error{
		"SetMFA":      f.svc.SetMFA(ctx, root, "ghost@example.com", true),
		"SetDisabled": f.svc.SetDisabled(ctx, root, "ghost@example.com", true),
		"SetAdmin":    f.svc.SetAdmin(ctx, root, "ghost@example.com", true),
	} {
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "ghost@example.com") {
			t.Errorf("%s of an unknown account: %v", name, err)
		}
	}
}

func TestListUsers(t *testing.T) {
	f := newFixture(t)
	f.user(t, bob, "Bob Primary 22", true)
	f.user(t, alice, "", false)
	f.appPassword(t, alice, "one")
	f.appPassword(t, alice, "two")
	users, err := f.svc.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Username != alice || users[0].AppPasswords != 2 || users[0].HasPassword ||
		users[1].Username != bob || !users[1].MFA || !users[1].HasPassword {
		t.Errorf("ListUsers = %+v", users)
	}
}

// TestCreateUserRefusesMasterSeparator: no account may be created whose
// name holds an upstream's master user separator ("mallory%proxy" would
// log in upstream as the master user's login of "mallory").
func TestCreateUserRefusesMasterSeparator(t *testing.T) {
	f := newFixture(t)
	f.v.MasterSeparators = []string{"%", "*"}
	for _, name := range []string{"mallory%proxy@example.com", "%@example.com"} {
		err := f.svc.CreateUser(t.Context(), root, NewUser{Username: name})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "username" || !strings.Contains(err.Error(), "separator") {
			t.Errorf("CreateUser(%q) = %v, want a username error naming the separator", name, err)
		}
		if _, err := f.st.GetAccount(t.Context(), name); err == nil {
			t.Errorf("%q was stored", name)
		}
	}
}

// Resetting the second factor of an account that never enrolled an
// authenticator resets nothing, so it is refused naming the user, and
// leaves no trace: the account as it was, no audit record (store or
// stream), nothing handed to the notifier (no "your two-step
// verification was reset" mail to alarm its owner). An unknown user is
// still "no account".
func TestResetMFAWithoutAuthenticatorIsRefused(t *testing.T) {
	f := newFixture(t)
	h := &handed{}
	f.svc.Notify = h
	ctx := context.Background()
	f.user(t, alice, "alice primary pw", true)
	before, recs, stream, handed := f.account(t, alice), len(f.records(t, alice)), len(f.streamed(t)), len(h.recs)

	err := f.svc.ResetMFA(ctx, root, "Alice@Example.com")
	var fe *FieldError
	const want = "username: alice@example.com has no authenticator enrolled: nothing to reset"
	if !errors.As(err, &fe) || fe.Field != "username" || err.Error() != want {
		t.Errorf("ResetMFA of a never-enrolled account = %v, want the field error %q", err, want)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Error("the refusal says the account does not exist")
	}
	if after := f.account(t, alice); !reflect.DeepEqual(after, before) {
		t.Errorf("account changed by the refused reset:\n before %+v\n after  %+v", before, after)
	}
	if n := len(f.records(t, alice)); n != recs {
		t.Errorf("%d audit records after the refused reset, want %d: %+v", n, recs, f.records(t, alice))
	}
	if n := len(f.streamed(t)); n != stream {
		t.Errorf("%d records in the audit stream after the refused reset, want %d", n, stream)
	}
	if len(h.recs) != handed {
		t.Errorf("the notifier was handed %+v", h.recs[handed:])
	}

	err = f.svc.ResetMFA(ctx, root, "nobody@example.com")
	if !errors.As(err, &fe) || !errors.Is(err, store.ErrNotFound) || err.Error() != `username: no account "nobody@example.com"` {
		t.Errorf("ResetMFA of an unknown user = %v, want the no-account error", err)
	}
}
