package authn

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/passgate/passgate/store"
)

var (
	thunderbird = store.Device{Client: "Thunderbird", TLS: "t13d1715h1_5b57614c22b0_3d5424432f57", Network: netip.MustParsePrefix("198.51.100.0/24")}
	thief       = store.Device{Client: "Thunderbird", TLS: "t13d3112h1_e8f1e7e78f70_ce5650b735ce", Network: netip.MustParsePrefix("203.0.113.0/24")}
)

func TestDrifted(t *testing.T) {
	bound := store.DeviceBinding{Device: thunderbird, Protocol: "imap"}
	with := func(fn func(*store.Device)) store.Device { d := thunderbird; fn(&d); return d }
	for _, tc := range []struct {
		name  string
		seen  store.Device
		proto string
		want  bool
	}{
		{"same device", thunderbird, "imap", false},
		{"other TLS fingerprint", with(func(d *store.Device) { d.TLS = thief.TLS }), "imap", true},
		{"no TLS where there was", with(func(d *store.Device) { d.TLS = "" }), "imap", true},
		{"other client name", with(func(d *store.Device) { d.Client = "K-9 Mail" }), "imap", true},
		{"no client name", with(func(d *store.Device) { d.Client = "" }), "imap", false},
		{"EHLO name is not an IMAP ID name", with(func(d *store.Device) { d.Client = "laptop.example.org" }), "smtp", false},
		{"other network", with(func(d *store.Device) { d.Network = thief.Network }), "imap", true},
		{"no network", with(func(d *store.Device) { d.Network = netip.Prefix{} }), "imap", false},
	} {
		if got := Drifted(bound, tc.seen, tc.proto); got != tc.want {
			t.Errorf("%s: Drifted = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A binding made without TLS drifts when TLS appears.
	plain := store.DeviceBinding{Device: store.Device{Client: "x"}, Protocol: "imap"}
	if !Drifted(plain, store.Device{Client: "x", TLS: thunderbird.TLS}, "imap") {
		t.Error("TLS after a plain binding is not drift")
	}
}

// deviceFixture is a Guard with a Cache over a real Verifier, recording
// audit records.
type deviceFixture struct {
	*cacheFixture
	audit *memAudit
}

func newDeviceFixture(t *testing.T, l Limits) *deviceFixture {
	f := &deviceFixture{cacheFixture: newCacheFixture(t), audit: &memAudit{}}
	f.g.Audit = &Auditor{Store: f.audit}
	f.g.Limits = l
	return f
}

// login runs alice's laptop password through the Guard from device d.
func (f *deviceFixture) login(t *testing.T, d store.Device) (Decision, int64) {
	t.Helper()
	a := attempt(alice, f.pw["alice/laptop"].Password)
	a.Device = d
	return f.verify(t, a)
}

// results returns the audit results recorded since the last call, and the
// device of each.
func (f *deviceFixture) results() ([]string, []*store.Device) {
	f.audit.mu.Lock()
	defer f.audit.mu.Unlock()
	var res []string
	var devs []*store.Device
	for _, r := range f.audit.recs {
		res = append(res, r.Result)
		devs = append(devs, r.Device)
	}
	f.audit.recs = nil
	return res, devs
}

func (f *deviceFixture) stored(t *testing.T) store.AppPassword {
	t.Helper()
	p, ok := f.st.app(alice, f.pw["alice/laptop"].ID)
	if !ok {
		t.Fatal("laptop password gone")
	}
	return p
}

func TestDeviceNotify(t *testing.T) {
	f := newDeviceFixture(t, Limits{})
	if d, _ := f.login(t, thunderbird); d.Result != OK {
		t.Fatalf("first login: %v", d.Result)
	}
	res, devs := f.results()
	if len(res) != 2 || res[0] != AuditDeviceFirstUse || *devs[0] != thunderbird || res[1] != "ok" || devs[1] != nil {
		t.Fatalf("first login audited %v, want device-first-use with the device, then ok", res)
	}
	if p := f.stored(t); p.Bound == nil || p.Bound.Device != thunderbird || p.Bound.Protocol != "imap" || !p.Bound.Time.Equal(t0) {
		t.Fatalf("bound %+v, want thunderbird over imap at t0", p.Bound)
	}
	// The same device again: a cache hit (no hash), no drift.
	if d, n := f.login(t, thunderbird); d.Result != OK || n != 0 {
		t.Fatalf("same device: %v after %d hashes", d.Result, n)
	}
	if res, _ := f.results(); len(res) != 1 || res[0] != "ok" {
		t.Fatalf("same device audited %v, want ok", res)
	}
	// Another device with the right secret: in, but drift, even from the
	// cache.
	if d, n := f.login(t, thief); d.Result != OK || n != 0 {
		t.Fatalf("other device: %v after %d hashes, want ok from the cache", d.Result, n)
	}
	res, devs = f.results()
	if len(res) != 2 || res[0] != AuditDeviceDrift || *devs[0] != thief || res[1] != "ok" {
		t.Fatalf("other device audited %v, want device-drift with its device, then ok", res)
	}
	p := f.stored(t)
	if len(p.Drift) != 1 || p.Drift[0].Device != thief || p.Drift[0].Refused || p.Drift[0].IP != clientIP || p.Bound.Device != thunderbird {
		t.Fatalf("stored drift %+v, bound %+v", p.Drift, p.Bound)
	}
	// The same drift within the hour is not recorded again; later it is.
	f.login(t, thief)
	if res, _ := f.results(); len(res) != 1 || len(f.stored(t).Drift) != 1 {
		t.Fatalf("repeated drift audited %v and stored %d events, want ok only and 1", res, len(f.stored(t).Drift))
	}
	f.clk.advance(driftRepeat)
	f.login(t, thief)
	if res, _ := f.results(); len(res) != 2 || res[0] != AuditDeviceDrift || len(f.stored(t).Drift) != 2 {
		t.Fatalf("drift an hour later audited %v, stored %d events", res, len(f.stored(t).Drift))
	}
}

// Under block, a right secret from another device is refused, counted
// like a wrong one (the thief's tries are bounded) and never remembered
// as a refusal of the secret: the owner's device still gets in.
func TestDeviceBlock(t *testing.T) {
	f := newDeviceFixture(t, Limits{MaxPerAccountAddress: 3, MaxPerAddress: 100, MaxPerNetwork: 100, MaxPerAccount: 100})
	f.st.editApp(alice, f.pw["alice/laptop"].ID, func(p *store.AppPassword) { p.DevicePolicy = store.DevicePolicyBlock })
	if d, _ := f.login(t, thunderbird); d.Result != OK {
		t.Fatalf("first login: %v", d.Result)
	}
	f.results()
	for i := range 3 {
		d, n := f.login(t, thief)
		if d.Result != DeviceRefused || d.AppPasswordID != f.pw["alice/laptop"].ID || n != 0 {
			t.Fatalf("thief %d: %v after %d hashes, want device-refused without a hash", i, d.Result, n)
		}
		res, devs := f.results()
		if len(res) != 1 || res[0] != string(DeviceRefused) || devs[0] == nil || *devs[0] != thief {
			t.Fatalf("thief %d audited %v, want one device-refused with the thief's device", i, res)
		}
	}
	if p := f.stored(t); len(p.Drift) != 1 || !p.Drift[0].Refused {
		t.Fatalf("drift events %+v, want one refused (repeats within the hour are not stored)", p.Drift)
	}
	if delays := f.clk.takeDelays(); len(delays) < 3 || delays[len(delays)-1] <= 0 {
		t.Errorf("refusals slept %v, want the tarpit of failures", delays)
	}
	if d, _ := f.login(t, thief); d.Result != RateLimited {
		t.Fatalf("thief after %d refusals: %v, want rate-limited", 3, d.Result)
	}
	// The owner, from another address, is not refused by the thief's
	// refusals being remembered.
	a := attempt(alice, f.pw["alice/laptop"].Password)
	a.Device, a.RemoteIP = thunderbird, netip.MustParseAddr("198.51.100.8")
	if d, _ := f.verify(t, a); d.Result != OK {
		t.Fatalf("owner after the thief: %v, want ok", d.Result)
	}
}

func TestDevicePolicies(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		f := newDeviceFixture(t, Limits{})
		f.v.DevicePolicy = store.DevicePolicyOff
		f.login(t, thunderbird)
		f.login(t, thief)
		if res, _ := f.results(); len(res) != 2 || res[0] != "ok" || res[1] != "ok" {
			t.Errorf("off audited %v, want ok twice", res)
		}
		if p := f.stored(t); p.Bound != nil || len(p.Drift) != 0 {
			t.Errorf("off stored %+v and %v", p.Bound, p.Drift)
		}
	})
	t.Run("installation block, password notify", func(t *testing.T) {
		f := newDeviceFixture(t, Limits{})
		f.v.DevicePolicy = store.DevicePolicyBlock
		f.login(t, thunderbird)
		if d, _ := f.login(t, thief); d.Result != DeviceRefused {
			t.Fatalf("installation block: %v", d.Result)
		}
		f.st.editApp(alice, f.pw["alice/laptop"].ID, func(p *store.AppPassword) { p.DevicePolicy = store.DevicePolicyNotify })
		if d, _ := f.login(t, thief); d.Result != OK {
			t.Fatalf("password notify over installation block: %v", d.Result)
		}
	})
	t.Run("no device is not checked", func(t *testing.T) {
		f := newDeviceFixture(t, Limits{})
		f.login(t, store.Device{})
		if p := f.stored(t); p.Bound != nil {
			t.Errorf("an attempt without a device bound %+v", p.Bound)
		}
	})
	t.Run("accepted device", func(t *testing.T) {
		f := newDeviceFixture(t, Limits{})
		f.v.DevicePolicy = store.DevicePolicyBlock
		f.login(t, thunderbird)
		f.login(t, thief)
		f.st.editApp(alice, f.pw["alice/laptop"].ID, func(p *store.AppPassword) {
			p.Bound = &store.DeviceBinding{Device: p.Drift[len(p.Drift)-1].Device, Protocol: "imap"}
		})
		if d, _ := f.login(t, thief); d.Result != OK {
			t.Errorf("accepted device: %v", d.Result)
		}
		if d, _ := f.login(t, thunderbird); d.Result != DeviceRefused {
			t.Errorf("the old device after accepting another: %v", d.Result)
		}
	})
}

// Two first logins at once from different devices: one binds, the other
// is drift (notify) or refused (block); neither overwrites the binding.
func TestDeviceConcurrentFirstUse(t *testing.T) {
	for _, policy := range []string{store.DevicePolicyNotify, store.DevicePolicyBlock} {
		t.Run(policy, func(t *testing.T) {
			for range 20 {
				f := newDeviceFixture(t, Limits{})
				f.v.DevicePolicy = policy
				var wg sync.WaitGroup
				got := make([]Result, 2)
				for i, dev := range []store.Device{thunderbird, thief} {
					wg.Go(func() {
						a := attempt(alice, f.pw["alice/laptop"].Password)
						a.Device = dev
						d, err := f.g.Verify(context.Background(), a)
						if err != nil {
							t.Error(err)
						}
						got[i] = d.Result
					})
				}
				wg.Wait()
				p := f.stored(t)
				if p.Bound == nil || len(p.Drift) != 1 || p.Drift[0].Device == p.Bound.Device {
					t.Fatalf("bound %+v, drift %+v: want one binding and one drift event of the other device", p.Bound, p.Drift)
				}
				res, _ := f.results()
				count := map[string]int{}
				for _, r := range res {
					count[r]++
				}
				wantOther := AuditDeviceDrift
				if policy == store.DevicePolicyBlock {
					wantOther = string(DeviceRefused)
				}
				if count[AuditDeviceFirstUse] != 1 || count[wantOther] != 1 {
					t.Fatalf("audited %v (results %v), want one first use and one %s", res, got, wantOther)
				}
			}
		})
	}
}

// Without a cache every login runs the Verifier: a device refusal must
// not become a known refusal of the secret, which would refuse the owner.
func TestDeviceRefusalIsNotAKnownRefusal(t *testing.T) {
	f := newDeviceFixture(t, Limits{})
	f.g.Cache = nil
	f.v.DevicePolicy = store.DevicePolicyBlock
	if d, _ := f.login(t, thunderbird); d.Result != OK {
		t.Fatalf("first login: %v", d.Result)
	}
	if d, n := f.login(t, thief); d.Result != DeviceRefused || n != 1 {
		t.Fatalf("thief: %v after %d hashes, want device-refused after 1", d.Result, n)
	}
	if d, n := f.login(t, thunderbird); d.Result != OK || n != 1 {
		t.Fatalf("owner after the thief: %v after %d hashes, want ok after 1", d.Result, n)
	}
}
