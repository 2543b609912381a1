package storetest

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// testReopen checks that accounts, app passwords (with their index), a
// revocation and the lookup key survive a restart.
func testReopen(t *testing.T, o Opener) {
	if o.Reopen == nil {
		t.Skip("backend cannot reopen")
	}
	s := o.New(t)
	alice := mustCreateAccount(t, s, "alice")
	bob := mustCreateAccount(t, s, "bob")
	err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error {
		a.MFA = true
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	alice.MFA = true
	ps := mustCreateAppPasswords(t, s, "alice", 3)
	bobs := mustCreateAppPasswords(t, s, "bob", 1)
	use := store.LastUse{Time: t0.Add(time.Hour), IP: netip.MustParseAddr("2001:db8::7"), Protocol: "smtp"}
	if err := s.TouchAppPassword(t.Context(), "alice", ps[2].ID, use); err != nil {
		t.Fatalf("TouchAppPassword: %v", err)
	}
	ps[2].LastUsed = use
	if err := s.RevokeAppPassword(t.Context(), "alice", ps[0].ID); err != nil {
		t.Fatalf("RevokeAppPassword: %v", err)
	}
	key, err := s.LookupKey(t.Context())
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}

	s = o.Reopen(t, s)

	accounts, err := s.ListAccounts(t.Context())
	if err != nil {
		t.Fatalf("ListAccounts after reopen: %v", err)
	}
	if len(accounts) != 2 {
		t.Fatalf("%d accounts after reopen, want 2", len(accounts))
	}
	checkAccount(t, "alice after reopen", accounts[0], alice)
	checkAccount(t, "bob after reopen", accounts[1], bob)
	checkAppPasswords(t, "alice's app passwords after reopen", mustList(t, s, "alice"), ps[1:])
	checkAppPasswords(t, "bob's app passwords after reopen", mustList(t, s, "bob"), bobs)
	for _, p := range append(ps[1:], bobs...) {
		got, err := s.FindAppPassword(t.Context(), p.Username, p.Tag)
		if err != nil {
			t.Fatalf("FindAppPassword(%q, %q) after reopen: %v", p.Username, p.ID, err)
		}
		checkAppPassword(t, "FindAppPassword after reopen", got, p)
	}
	_, err = s.FindAppPassword(t.Context(), "alice", ps[0].Tag)
	wantErr(t, "FindAppPassword(revoked) after reopen", err, store.ErrNotFound)
	got, err := s.LookupKey(t.Context())
	if err != nil {
		t.Fatalf("LookupKey after reopen: %v", err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("lookup key changed across reopen")
	}
}
