package account

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// AcceptSeenDevice binds only the device of the drift event the owner
// was shown: a login from another device that came in meanwhile is not
// accepted in its place, and nothing is bound or audited.
func TestAcceptSeenDevice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	np := f.appPassword(t, alice, "Phone")
	phone := store.Device{Client: "K-9 Mail", Network: netip.MustParsePrefix("192.0.2.0/24")}
	laptop := store.Device{Client: "Thunderbird", Network: netip.MustParsePrefix("198.51.100.0/24")}
	intruder := store.Device{Client: "curl", Network: netip.MustParsePrefix("203.0.113.0/24")}
	drift := func(at time.Time, d store.Device) {
		t.Helper()
		_, err := f.st.UpdateAppPassword(ctx, alice, np.ID, func(p *store.AppPassword) error {
			if p.Bound == nil {
				p.Bound = &store.DeviceBinding{Device: phone, Protocol: "imap", Time: t0}
			}
			p.AddDrift(store.DriftEvent{Time: at, Protocol: "imap", Device: d})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := t0.Add(time.Hour)
	drift(seen, laptop)                    // what the owner's page shows
	drift(seen.Add(time.Minute), intruder) // comes in before the click

	before := len(f.records(t, alice))
	_, err := f.svc.AcceptSeenDevice(ctx, root, alice, np.ID, seen)
	if !isField(err, "seen") || !errors.Is(err, ErrNewerDrift) {
		t.Fatalf("accepting a drift event that is no longer the newest: %v, want a FieldError on seen wrapping ErrNewerDrift", err)
	}
	list, err := f.svc.ListAppPasswords(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if list[0].Bound.Device != phone {
		t.Fatalf("bound to %+v after a refused accept, want the phone still", list[0].Bound.Device)
	}
	if n := len(f.records(t, alice)); n != before {
		t.Errorf("%d audit records after a refused accept, want %d", n, before)
	}
	if _, err := f.svc.AcceptSeenDevice(ctx, root, alice, np.ID, time.Time{}); !isField(err, "seen") {
		t.Errorf("no seen time: %v, want a FieldError on seen", err)
	}

	info, err := f.svc.AcceptSeenDevice(ctx, root, alice, np.ID, seen.Add(time.Minute))
	if err != nil || info.Bound == nil || info.Bound.Device != intruder {
		t.Fatalf("accepting the newest event as seen: bound %+v, %v", info.Bound, err)
	}
	recs := f.records(t, alice)
	if last := recs[len(recs)-1]; last.Result != ResultDeviceAccepted || last.Device == nil || *last.Device != intruder {
		t.Errorf("newest audit record %+v, want device-accepted with the device seen", last)
	}
}
