package storetest

import (
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// device returns a fixture device numbered n.
func device(n int) store.Device {
	return store.Device{Client: "client" + string(rune('0'+n)), TLS: "t13d0000h2_000000000000_00000000000" + string(rune('0'+n)),
		Network: netip.MustParsePrefix("192.0.2.0/24")}
}

// testDevices: UpdateAppPassword, which first-use binding, drift events and
// device policies are stored with.
func testDevices(t *testing.T, o Opener) {
	t.Run("BindDriftPolicyRoundTrip", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := mustCreateAppPasswords(t, s, "alice", 1)[0]
		use := store.LastUse{Time: t0.Add(time.Hour), IP: netip.MustParseAddr("192.0.2.7"), Protocol: "imap"}
		if err := s.TouchAppPassword(t.Context(), "alice", p.ID, use); err != nil {
			t.Fatal(err)
		}
		got, err := s.UpdateAppPassword(t.Context(), "alice", p.ID, func(p *store.AppPassword) error {
			p.Bound = &store.DeviceBinding{Device: device(1), Protocol: "imap", Time: t0}
			p.DevicePolicy = store.DevicePolicyBlock
			for i := range store.MaxDriftEvents + 3 {
				p.AddDrift(store.DriftEvent{Time: t0.Add(time.Duration(i) * time.Second), Device: device(2), Refused: i%2 == 0})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateAppPassword: %v", err)
		}
		if len(got.Drift) != store.MaxDriftEvents || !got.Drift[0].Time.Equal(t0.Add(3*time.Second)) {
			t.Fatalf("drift kept %d events starting %v, want the newest %d", len(got.Drift), got.Drift[0].Time, store.MaxDriftEvents)
		}
		list := mustList(t, s, "alice")
		if len(list) != 1 || !reflect.DeepEqual(list[0].Bound, got.Bound) || list[0].DevicePolicy != "block" ||
			!reflect.DeepEqual(list[0].Drift, got.Drift) {
			t.Fatalf("listed %+v, want the update %+v", list, got)
		}
		if !list[0].LastUsed.Time.Equal(use.Time) || list[0].LastUsed.IP != use.IP {
			t.Errorf("last use after the update = %+v, want %+v", list[0].LastUsed, use)
		}
		found, err := s.FindAppPassword(t.Context(), "alice", p.Tag)
		if err != nil || !reflect.DeepEqual(found.Bound, got.Bound) {
			t.Errorf("FindAppPassword = %+v, %v; want the bound device", found.Bound, err)
		}
		if o.Reopen != nil {
			s = o.Reopen(t, s)
			if list := mustList(t, s, "alice"); !reflect.DeepEqual(list[0].Bound, got.Bound) || len(list[0].Drift) != store.MaxDriftEvents {
				t.Errorf("after reopen: %+v", list[0])
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := mustCreateAppPasswords(t, s, "alice", 1)[0]
		if _, err := s.UpdateAppPassword(t.Context(), "alice", "nope", func(*store.AppPassword) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown id: %v, want ErrNotFound", err)
		}
		if _, err := s.UpdateAppPassword(t.Context(), "bob", p.ID, func(*store.AppPassword) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown account: %v, want ErrNotFound", err)
		}
		bad := map[string]func(*store.AppPassword) error{
			"fn error": func(p *store.AppPassword) error { p.DevicePolicy = "block"; return errBoom },
			"tag":      func(p *store.AppPassword) error { p.DevicePolicy = "block"; p.Tag[0] ^= 1; return nil },
			"id":       func(p *store.AppPassword) error { p.DevicePolicy = "block"; p.ID = "other"; return nil },
			"last use": func(p *store.AppPassword) error { p.DevicePolicy = "block"; p.LastUsed.Protocol = "smtp"; return nil },
			"policy":   func(p *store.AppPassword) error { p.DevicePolicy = "sometimes"; return nil },
		}
		for name, fn := range bad {
			if _, err := s.UpdateAppPassword(t.Context(), "alice", p.ID, fn); err == nil {
				t.Errorf("%s: update succeeded", name)
			} else if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s: %v, want a logic error, not unavailable", name, err)
			}
		}
		if got := mustList(t, s, "alice")[0]; got.DevicePolicy != "" {
			t.Errorf("refused updates changed the policy to %q", got.DevicePolicy)
		}
		if _, err := s.FindAppPassword(t.Context(), "alice", p.Tag); err != nil {
			t.Errorf("the tag no longer finds the password: %v", err)
		}
	})
	t.Run("ConcurrentFirstBind", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := mustCreateAppPasswords(t, s, "alice", 1)[0]
		const n = 8
		var wg sync.WaitGroup
		bound := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.UpdateAppPassword(t.Context(), "alice", p.ID, func(p *store.AppPassword) error {
					bound[i] = false
					if p.Bound == nil {
						p.Bound = &store.DeviceBinding{Device: device(i), Time: t0}
						bound[i] = true
						return nil
					}
					p.AddDrift(store.DriftEvent{Time: t0, Device: device(i)})
					return nil
				})
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("update %d: %v", i, errs[i])
			}
			if bound[i] {
				winners++
			}
		}
		got := mustList(t, s, "alice")[0]
		if winners != 1 || got.Bound == nil || len(got.Drift) != n-1 {
			t.Fatalf("%d updates bound, stored %+v with %d drift events; want 1 binding and %d drift events", winners, got.Bound, len(got.Drift), n-1)
		}
		for _, e := range got.Drift {
			if e.Device == got.Bound.Device {
				t.Errorf("the bound device %v is also a drift event", e.Device)
			}
		}
	})
}
