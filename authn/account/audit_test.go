package account

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// Every change is audited with its actor, in the store and in the audit
// stream; refused changes and reads are not.
func TestEveryChangeIsAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	op := Actor{Door: DoorControl, Name: "ops"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.svc.CreateUser(ctx, op, NewUser{Username: alice}))
	must(f.svc.SetMFA(ctx, op, alice, true))
	must(f.svc.SetMFA(ctx, op, alice, false))
	f.enrol(t, alice) // the portal's enrolment: ResetMFA needs an authenticator to reset
	must(f.svc.ResetMFA(ctx, op, alice))
	must(f.svc.SetDisabled(ctx, op, alice, true))
	must(f.svc.SetDisabled(ctx, op, alice, false))
	must(f.svc.SetAdmin(ctx, op, alice, true))
	must(f.svc.SetAdmin(ctx, op, alice, false))
	_, err := f.svc.AddAlias(ctx, op, alice, "sales@example.com")
	must(err)
	_, err = f.svc.RemoveAlias(ctx, op, alice, "sales@example.com")
	must(err)
	np, err := f.svc.CreateAppPassword(ctx, op, alice, "Phone", AppPasswordOptions{})
	must(err)
	_, err = f.svc.RevokeAppPassword(ctx, op, alice, np.ID)
	must(err)
	_, err = f.svc.RevokeAll(ctx, op, []string{alice})
	must(err)
	must(f.svc.SetPassword(ctx, op, alice, "a long new password"))
	// Refused and read-only calls leave no record.
	_, err = f.svc.RemoveAlias(ctx, op, alice, "none@example.com")
	if err == nil {
		t.Fatal("removing a missing alias succeeded")
	}
	if err := f.svc.ResetMFA(ctx, op, alice); err == nil {
		t.Fatal("resetting an authenticator already reset succeeded")
	}
	f.svc.ListUsers(ctx)
	f.svc.Activity(ctx, alice, 10)

	want := []string{ResultUserCreated, ResultMFAOn, ResultMFAOff, ResultMFAReset, ResultDisabled, ResultEnabled,
		ResultAdminOn, ResultAdminOff, ResultAliasAdded, ResultAliasRemoved, ResultAppPasswordCreated,
		ResultAppPasswordRevoked, ResultAppPasswordsDeleted, ResultPasswordChanged}
	recs := f.records(t, alice)
	stream := f.streamed(t)
	if len(recs) != len(want) || len(stream) != len(want) {
		t.Fatalf("%d records in the store and %d in the stream, want %d", len(recs), len(stream), len(want))
	}
	for i, r := range recs {
		if r.Result != want[i] || r.Actor != "control:ops" || r.Protocol != ProtocolAdmin || !r.Time.Equal(t0) {
			t.Errorf("record %d: %+v, want %s by control:ops", i, r, want[i])
		}
		if s := stream[i]; s["result"] != want[i] || s["actor"] != "control:ops" || s["user"] != alice || s["protocol"] != ProtocolAdmin {
			t.Errorf("stream record %d: %v", i, s)
		}
	}
	if recs[10].AppPasswordID != np.ID || recs[10].AppPasswordName != "Phone" || recs[11].AppPasswordID != np.ID {
		t.Errorf("app password records do not name it: %+v %+v", recs[10], recs[11])
	}
	if strings.Contains(f.audit.String(), np.Password) || strings.Contains(f.log.String(), np.Password) ||
		strings.Contains(f.audit.String(), "a long new password") || strings.Contains(f.log.String(), "a long new password") {
		t.Error("a secret reached the audit stream or the log")
	}
	if n := strings.Count(f.log.String(), `msg="account change"`); n != len(want) {
		t.Errorf("%d log lines for %d changes", n, len(want))
	}
}

// A user changing their own account in the portal is self-service
// (protocol portal); an admin in the portal, with the client's address.
func TestPortalActors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	remote := netip.MustParseAddrPort("198.51.100.7:50000")
	self := Actor{Door: DoorPortal, Name: alice, Remote: remote, Client: "Firefox"}
	admin := Actor{Door: DoorPortal, Name: "root@example.com", Remote: remote, Client: "Firefox"}
	if _, err := f.svc.CreateAppPassword(ctx, self, alice, "Phone", AppPasswordOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetDisabled(ctx, admin, alice, true); err != nil {
		t.Fatal(err)
	}
	recs := f.records(t, alice)
	want := []struct{ protocol, actor string }{
		{ProtocolAdmin, "cli:root"}, {ProtocolPortal, "portal:" + alice}, {ProtocolAdmin, "portal:root@example.com"},
	}
	for i, r := range recs {
		if r.Protocol != want[i].protocol || r.Actor != want[i].actor || (i > 0 && (r.Remote != remote || r.Client != "Firefox")) {
			t.Errorf("record %d: %+v, want protocol %s actor %s", i, r, want[i].protocol, want[i].actor)
		}
	}
}

// Without a door and a name, nothing changes.
func TestChangesNeedAnActor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	for _, who := range []Actor{{}, {Door: DoorCLI}, {Door: "web", Name: "x"}} {
		if err := f.svc.SetDisabled(ctx, who, alice, true); err == nil {
			t.Errorf("actor %+v: change accepted", who)
		}
		if _, err := f.svc.CreateAppPassword(ctx, who, alice, "x", AppPasswordOptions{}); err == nil {
			t.Errorf("actor %+v: app password created", who)
		}
	}
	if a := f.account(t, alice); a.Disabled {
		t.Error("disabled without an actor")
	}
	if recs := f.records(t, alice); len(recs) != 1 {
		t.Errorf("%d records, want only the creation", len(recs))
	}
}
