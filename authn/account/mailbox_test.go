package account

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/passgate/passgate/store"
)

// Linking and unlinking a mailbox are stored and audited with their actor;
// unlinking an account without a link changes and audits nothing.
func TestMailboxLink(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	self := Actor{Door: DoorPortal, Name: alice}
	admin := Actor{Door: DoorPortal, Name: bob}

	if err := f.svc.LinkMailbox(ctx, self, alice, nil); err == nil {
		t.Error("LinkMailbox stored an empty token")
	}
	sealed := []byte("\x01sealed refresh token")
	if err := f.svc.LinkMailbox(ctx, self, alice, sealed); err != nil {
		t.Fatal(err)
	}
	sealed[0] = 'x' // the service keeps its own copy
	a := f.account(t, alice)
	if a.OAuth == nil || !bytes.Equal(a.OAuth.RefreshEnc, []byte("\x01sealed refresh token")) || !a.OAuth.Linked.Equal(t0) {
		t.Fatalf("stored link %+v", a.OAuth)
	}
	if err := f.svc.UnlinkMailbox(ctx, admin, "ALICE@example.com"); err != nil {
		t.Fatal(err)
	}
	if a := f.account(t, alice); a.OAuth != nil {
		t.Fatalf("link still stored after unlink: %+v", a.OAuth)
	}
	if err := f.svc.UnlinkMailbox(ctx, admin, alice); !errors.Is(err, ErrNotLinked) {
		t.Errorf("unlink without a link: err = %v, want ErrNotLinked", err)
	}
	if err := f.svc.UnlinkMailbox(ctx, admin, carol); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unlink of an unknown account: err = %v, want ErrNotFound", err)
	}
	recs := f.records(t, alice)
	want := []struct{ result, actor, protocol string }{
		{ResultUserCreated, "cli:root", ProtocolAdmin},
		{ResultMailboxLinked, "portal:" + alice, ProtocolPortal},
		{ResultMailboxUnlinked, "portal:" + bob, ProtocolAdmin},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if r := recs[i]; r.Result != w.result || r.Actor != w.actor || r.Protocol != w.protocol {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
	}
}
