package account

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// The listing shows a password's device, its drift events and its policy;
// AcceptDevice binds the newest drift event's device and is audited with
// it; SetDevicePolicy checks the policy and names the field when refused.
func TestDeviceAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, alice, "", false)
	np := f.appPassword(t, alice, "Phone")
	if _, err := f.svc.AcceptDevice(ctx, root, alice, np.ID); !isField(err, "id") {
		t.Fatalf("accepting without drift: %v, want a FieldError on id", err)
	}
	phone := store.Device{Client: "K-9 Mail", TLS: "t13d1516h2_aaaaaaaaaaaa_bbbbbbbbbbbb", Network: netip.MustParsePrefix("192.0.2.0/24")}
	laptop := store.Device{Client: "Thunderbird", TLS: "t13d1715h1_cccccccccccc_dddddddddddd", Network: netip.MustParsePrefix("198.51.100.0/24")}
	other := store.Device{Client: "curl", Network: netip.MustParsePrefix("203.0.113.0/24")}
	_, err := f.st.UpdateAppPassword(ctx, alice, np.ID, func(p *store.AppPassword) error {
		p.Bound = &store.DeviceBinding{Device: phone, Protocol: "imap", Time: t0}
		p.AddDrift(store.DriftEvent{Time: t0.Add(time.Minute), Protocol: "smtp", Device: other})
		p.AddDrift(store.DriftEvent{Time: t0.Add(time.Hour), Protocol: "imap", Device: laptop, Refused: true})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.ListAppPasswords(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(list[0])
	var shown struct {
		Bound struct {
			Device store.Device `json:"device"`
		} `json:"bound"`
		Drift []struct {
			Device  store.Device `json:"device"`
			Refused bool         `json:"refused"`
		} `json:"drift"`
	}
	if err := json.Unmarshal(js, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Bound.Device != phone || len(shown.Drift) != 2 || shown.Drift[1].Device != laptop || !shown.Drift[1].Refused {
		t.Fatalf("listing JSON %s does not show the device and drift events", js)
	}

	portal := Actor{Door: DoorPortal, Name: alice, Remote: netip.MustParseAddrPort("192.0.2.9:4000")}
	info, err := f.svc.AcceptDevice(ctx, portal, alice, "phone") // by name, case aside
	if err != nil {
		t.Fatalf("AcceptDevice: %v", err)
	}
	if info.Bound == nil || info.Bound.Device != laptop || info.Bound.Protocol != "imap" || len(info.Drift) != 2 {
		t.Fatalf("after accepting: bound %+v, %d drift events; want the laptop bound, history kept", info.Bound, len(info.Drift))
	}
	recs := f.records(t, alice)
	last := recs[len(recs)-1]
	if last.Result != ResultDeviceAccepted || last.Device == nil || *last.Device != laptop ||
		last.AppPasswordID != np.ID || last.AppPasswordName != "Phone" || last.Protocol != ProtocolPortal || last.Remote != portal.Remote {
		t.Fatalf("newest audit record %+v, want device-accepted with the laptop", last)
	}

	for _, pol := range []string{"block", "off", "notify", "default"} {
		info, err := f.svc.SetDevicePolicy(ctx, root, alice, np.ID, pol)
		want := pol
		if pol == "default" {
			want = ""
		}
		if err != nil || info.DevicePolicy != want {
			t.Fatalf("SetDevicePolicy(%q) = %q, %v", pol, info.DevicePolicy, err)
		}
	}
	if _, err := f.svc.SetDevicePolicy(ctx, root, alice, np.ID, "sometimes"); !isField(err, "policy") {
		t.Errorf("unknown policy: %v, want a FieldError on policy", err)
	}
	if _, err := f.svc.SetDevicePolicy(ctx, root, alice, "nope", "block"); !isField(err, "id") || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v, want a FieldError on id wrapping ErrNotFound", err)
	}
	if recs := f.records(t, alice); recs[len(recs)-1].Result != ResultDevicePolicy {
		t.Errorf("newest record %q, want %q", recs[len(recs)-1].Result, ResultDevicePolicy)
	}
}

func isField(err error, field string) bool {
	var fe *FieldError
	return errors.As(err, &fe) && fe.Field == field
}
