package bolt_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/passgate/passgate/store"
)

// The login path's reads skip decoding a record they decoded before, but
// never serve a stale one: a change or a revocation is seen by the next
// read, and what one reader changes in its copy no other reader sees.
func TestRepeatedReadsSeeChangesAndRevocation(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	if err := db.CreateAccount(ctx, store.Account{Username: "alice", Aliases: []string{"a@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAppPassword(ctx, appPass("alice", "id1", "tag1")); err != nil {
		t.Fatal(err)
	}
	find := func() (store.AppPassword, error) { return db.FindAppPassword(ctx, "alice", []byte("tag1")) }
	p, err := find()
	if err != nil {
		t.Fatal(err)
	}
	p.Scopes[0] = "changed-by-a-reader"
	if p, err = find(); err != nil || p.Scopes[0] == "changed-by-a-reader" {
		t.Fatalf("second read: %v, scopes %v: a reader's change reached another reader", err, p.Scopes)
	}
	a, err := db.GetAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a.Aliases[0] = "changed@example.org"
	if a, err = db.GetAccount(ctx, "alice"); err != nil || a.Aliases[0] != "a@example.org" {
		t.Fatalf("second GetAccount: %v, aliases %v", err, a.Aliases)
	}

	net := netip.MustParsePrefix("192.0.2.0/24")
	if _, err := db.UpdateAppPassword(ctx, "alice", "id1", func(p *store.AppPassword) error {
		p.AllowFrom = []netip.Prefix{net}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p, err = find(); err != nil || len(p.AllowFrom) != 1 || p.AllowFrom[0] != net {
		t.Errorf("after UpdateAppPassword: %v, AllowFrom %v, want [%v]", err, p.AllowFrom, net)
	}
	if err := db.UpdateAccount(ctx, "alice", func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if a, err = db.GetAccount(ctx, "alice"); err != nil || !a.Disabled {
		t.Errorf("after disabling: %v, Disabled %v, want true", err, a.Disabled)
	}
	refs := []store.SessionRef{{Username: "alice", AppPasswordID: "id1"}}
	if st, err := db.CheckSessions(ctx, refs); err != nil || st[0].Account == nil || !st[0].Account.Disabled || st[0].AppPassword == nil {
		t.Errorf("CheckSessions before revocation: %v, %+v", err, st)
	}
	if err := db.RevokeAppPassword(ctx, "alice", "id1"); err != nil {
		t.Fatal(err)
	}
	if _, err := find(); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindAppPassword after revocation: %v, want ErrNotFound", err)
	}
	if st, err := db.CheckSessions(ctx, refs); err != nil || st[0].AppPassword != nil {
		t.Errorf("CheckSessions after revocation: %v, app password %+v, want none", err, st[0].AppPassword)
	}
}
