package authn

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestAppPasswordAllowFrom(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np, err := createAppPassword(context.Background(), f.v, alice, "Office", nil, time.Time{},
		netip.MustParsePrefix("192.0.2.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	in, out := attempt(alice, np.Password), attempt(alice, np.Password)
	in.RemoteIP, out.RemoteIP = netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("198.51.100.1")
	if d := f.verifyOnce(t, in); d.Result != OK {
		t.Errorf("from inside the network: %v, want ok", d.Result)
	}
	if d := f.verifyOnce(t, out); d.Result != AddressDenied {
		t.Errorf("from outside the network: %v, want %v", d.Result, AddressDenied)
	}
}

func TestAppPasswordsOnlyRefusesPrimaryWithoutMFA(t *testing.T) {
	f := newFixture(t)
	f.v.AppPasswordsOnly = true
	f.account(t, alice, "the primary one", false)
	np := f.appPassword(t, alice, "Outlook")
	if d := f.verifyOnce(t, attempt(alice, "the primary one")); d.Result != PrimaryRefusedMFA {
		t.Errorf("primary with app-passwords-only: %v, want %v", d.Result, PrimaryRefusedMFA)
	}
	if d := f.verifyOnce(t, attempt(alice, "wrong primary")); d.Result != BadSecret {
		t.Errorf("wrong primary: %v, want %v", d.Result, BadSecret)
	}
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != OK {
		t.Errorf("app password: %v, want ok", d.Result)
	}
}
