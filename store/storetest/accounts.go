package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

func testAccounts(t *testing.T, o Opener) {
	t.Run("CreateGet", func(t *testing.T) {
		s := o.New(t)
		a := store.Account{
			Username: "alice@example.org", PasswordHash: fakeHash, MFA: true, Created: t0,
			Admin:     true,
			Aliases:   []string{"a.smith@example.org", "postmaster@example.org"},
			Directory: "ldap",
			TOTP: &store.TOTP{
				SecretEnc:      []byte("\x00sealed\xffsecret"),
				Enrolled:       t0.Add(time.Minute),
				Recovery:       []store.RecoveryCode{{Tag: []byte("tag 1"), Hash: fakeHash + "3"}},
				RecoveryHashes: []string{fakeHash + "1", fakeHash + "2"},
			},
			OAuth: &store.OAuthLink{RefreshEnc: []byte("\x00sealed\xffrefresh"), Linked: t0.Add(2 * time.Minute)},
		}
		if err := s.CreateAccount(t.Context(), a); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		got, err := s.GetAccount(t.Context(), a.Username)
		if err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		checkAccount(t, "GetAccount", got, a)
	})

	t.Run("DuplicateKeepsOriginal", func(t *testing.T) {
		s := o.New(t)
		a := mustCreateAccount(t, s, "alice")
		dup := store.Account{Username: "alice", Disabled: true, Created: t0.Add(time.Hour)}
		wantErr(t, "CreateAccount(duplicate)", s.CreateAccount(t.Context(), dup), store.ErrExists)
		got, err := s.GetAccount(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		checkAccount(t, "after duplicate create", got, a)
	})

	t.Run("GetUnknown", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		_, err := s.GetAccount(t.Context(), "bob")
		wantErr(t, "GetAccount(unknown)", err, store.ErrNotFound)
	})

	t.Run("Update", func(t *testing.T) {
		s := o.New(t)
		a := mustCreateAccount(t, s, "alice")
		totp := &store.TOTP{SecretEnc: []byte("sealed"), Enrolled: t0, RecoveryHashes: []string{fakeHash}}
		link := &store.OAuthLink{Linked: t0, Refused: t0.Add(time.Hour)}
		err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error {
			a.MFA = true
			a.PasswordHash = ""
			a.Admin, a.Aliases, a.TOTP, a.OAuth = true, []string{"al@example.org"}, totp, link
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		a.MFA, a.PasswordHash = true, ""
		a.Admin, a.Aliases, a.TOTP, a.OAuth = true, []string{"al@example.org"}, totp, link
		got, err := s.GetAccount(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		checkAccount(t, "after update", got, a)
	})

	t.Run("UpdateAbortsOnError", func(t *testing.T) {
		s := o.New(t)
		a := mustCreateAccount(t, s, "alice")
		err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error {
			a.Disabled = true
			a.PasswordHash = "changed"
			return errBoom
		})
		wantErr(t, "UpdateAccount(fn fails)", err, errBoom)
		got, err := s.GetAccount(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		checkAccount(t, "after aborted update", got, a)
	})

	t.Run("UpdateUnknown", func(t *testing.T) {
		s := o.New(t)
		called := false
		err := s.UpdateAccount(t.Context(), "bob", func(*store.Account) error {
			called = true
			return nil
		})
		wantErr(t, "UpdateAccount(unknown)", err, store.ErrNotFound)
		if called {
			t.Error("UpdateAccount called fn for an unknown account")
		}
		if _, err := s.GetAccount(t.Context(), "bob"); err == nil {
			t.Error("UpdateAccount of an unknown account created it")
		}
	})

	t.Run("ListOrdered", func(t *testing.T) {
		s := o.New(t)
		list, err := s.ListAccounts(t.Context())
		if err != nil || len(list) != 0 {
			t.Fatalf("ListAccounts(empty store) = %v, %v; want none", list, err)
		}
		for _, u := range []string{"carol", "alice@example.org", "bob", "alice"} {
			mustCreateAccount(t, s, u)
		}
		list, err = s.ListAccounts(t.Context())
		if err != nil {
			t.Fatalf("ListAccounts: %v", err)
		}
		var names []string
		for _, a := range list {
			names = append(names, a.Username)
			checkAccount(t, "listed account", a, account(a.Username))
		}
		want := []string{"alice", "alice@example.org", "bob", "carol"}
		if !slices.Equal(names, want) {
			t.Fatalf("ListAccounts = %q, want %q", names, want)
		}
	})
}
