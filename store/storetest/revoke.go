package storetest

import (
	"testing"

	"github.com/passgate/passgate/store"
)

func testRevoke(t *testing.T, o Opener) {
	s := o.New(t)
	mustCreateAccount(t, s, "alice")
	mustCreateAccount(t, s, "bob")
	ps := mustCreateAppPasswords(t, s, "alice", 3)
	bobs := mustCreateAppPasswords(t, s, "bob", 1)

	if err := s.RevokeAppPassword(t.Context(), "alice", ps[1].ID); err != nil {
		t.Fatalf("RevokeAppPassword: %v", err)
	}
	checkAppPasswords(t, "after revoke", mustList(t, s, "alice"), []store.AppPassword{ps[0], ps[2]})
	checkAppPasswords(t, "other account after revoke", mustList(t, s, "bob"), bobs)
	_, err := s.FindAppPassword(t.Context(), "alice", ps[1].Tag)
	wantErr(t, "FindAppPassword(revoked)", err, store.ErrNotFound)

	wantErr(t, "RevokeAppPassword(again)", s.RevokeAppPassword(t.Context(), "alice", ps[1].ID), store.ErrNotFound)
	wantErr(t, "RevokeAppPassword(unknown account)", s.RevokeAppPassword(t.Context(), "carol", ps[0].ID), store.ErrNotFound)
	wantErr(t, "RevokeAppPassword(other account's id)", s.RevokeAppPassword(t.Context(), "bob", ps[2].ID), store.ErrNotFound)
	checkAppPasswords(t, "after failed revokes", mustList(t, s, "alice"), []store.AppPassword{ps[0], ps[2]})

	// The ID and the tag are free again.
	mustCreateAppPassword(t, s, ps[1])
	checkAppPasswords(t, "after re-create", mustList(t, s, "alice"), ps)
}

func testRevokeAll(t *testing.T, o Opener) {
	// setup makes alice (3), bob (2), carol (1) and dave (none).
	setup := func(t *testing.T) (store.Store, map[string][]store.AppPassword) {
		s := o.New(t)
		ps := map[string][]store.AppPassword{}
		for i, u := range []string{"alice", "bob", "carol", "dave"} {
			mustCreateAccount(t, s, u)
			ps[u] = mustCreateAppPasswords(t, s, u, 3-i)
		}
		return s, ps
	}
	checkAll := func(t *testing.T, s store.Store, want map[string][]store.AppPassword) {
		t.Helper()
		for u, ps := range want {
			checkAppPasswords(t, "ListAppPasswords("+u+")", mustList(t, s, u), ps)
			for _, p := range ps {
				if _, err := s.FindAppPassword(t.Context(), u, p.Tag); err != nil {
					t.Fatalf("FindAppPassword(%q, %q): %v", u, p.ID, err)
				}
			}
		}
	}

	t.Run("Revokes", func(t *testing.T) {
		s, ps := setup(t)
		n, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice", "bob", "dave"})
		if err != nil || n != 5 {
			t.Fatalf("RevokeAllAppPasswords = %d, %v; want 5, nil", n, err)
		}
		for _, u := range []string{"alice", "bob"} {
			if list := mustList(t, s, u); len(list) != 0 {
				t.Errorf("%s still has %q", u, ids(list))
			}
			for _, p := range ps[u] {
				_, err := s.FindAppPassword(t.Context(), u, p.Tag)
				wantErr(t, "FindAppPassword(revoked)", err, store.ErrNotFound)
			}
			if _, err := s.GetAccount(t.Context(), u); err != nil {
				t.Errorf("account %s after revoke-all: %v", u, err)
			}
		}
		checkAll(t, s, map[string][]store.AppPassword{"carol": ps["carol"]})
		// The tags are free again.
		mustCreateAppPassword(t, s, ps["alice"][0])
	})

	t.Run("UnknownUserDeletesNothing", func(t *testing.T) {
		s, ps := setup(t)
		n, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice", "nobody", "bob"})
		wantErr(t, "RevokeAllAppPasswords(with unknown user)", err, store.ErrNotFound)
		if n != 0 {
			t.Errorf("RevokeAllAppPasswords failed but returned %d", n)
		}
		checkAll(t, s, ps)
	})

	t.Run("Empty", func(t *testing.T) {
		s, ps := setup(t)
		n, err := s.RevokeAllAppPasswords(t.Context(), nil)
		if err != nil || n != 0 {
			t.Fatalf("RevokeAllAppPasswords(nil) = %d, %v; want 0, nil", n, err)
		}
		checkAll(t, s, ps)
	})
}
