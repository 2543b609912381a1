package authn

import (
	"context"
	"net/netip"
	"testing"
)

func TestCreateAppPasswordAllowFrom(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np, err := f.v.CreateAppPasswordWith(context.Background(), alice, "Office", AppPasswordOptions{
		AllowFrom: []netip.Prefix{netip.MustParsePrefix("192.0.2.77/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := f.st.app(alice, np.ID); len(p.AllowFrom) != 1 || p.AllowFrom[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("stored AllowFrom = %v, want the masked 192.0.2.0/24", p.AllowFrom)
	}
	in, out := attempt(alice, np.Password), attempt(alice, np.Password)
	in.RemoteIP, out.RemoteIP = netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("198.51.100.1")
	if d := f.verifyOnce(t, in); d.Result != OK {
		t.Errorf("from inside the network: %v, want ok", d.Result)
	}
	if d := f.verifyOnce(t, out); d.Result != AddressDenied {
		t.Errorf("from outside the network: %v, want %v", d.Result, AddressDenied)
	}
	if _, err := f.v.CreateAppPasswordWith(context.Background(), alice, "Bad", AppPasswordOptions{
		AllowFrom: []netip.Prefix{{}},
	}); err == nil {
		t.Error("an invalid network was accepted")
	}
}

func TestPrimaryPasswordChangeRevokesAppPasswords(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFixture(t)
		f.v.KeepAppPasswordsOnPasswordChange = keep
		f.account(t, alice, "first primary", false)
		np := f.appPassword(t, alice, "Outlook")
		if err := f.v.SetPrimaryPassword(context.Background(), alice, "second primary"); err != nil {
			t.Fatal(err)
		}
		want := BadSecret
		if keep {
			want = OK
		}
		if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != want {
			t.Errorf("keep=%v: app password after a primary change: %v, want %v", keep, d.Result, want)
		}
		if d := f.verifyOnce(t, attempt(alice, "second primary")); d.Result != OK {
			t.Errorf("keep=%v: new primary: %v, want ok", keep, d.Result)
		}
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
