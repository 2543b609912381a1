package authn

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// TestRevalidate: a live session's OK decision is decided again from what
// the store holds now, as a new login with the same credential would be.
func TestRevalidate(t *testing.T) {
	f := population(t)
	f.v.Now = func() time.Time { return t0 }
	soon := f.appPassword(t, alice, "soon")
	f.st.editApp(alice, soon.ID, func(p *store.AppPassword) { p.Expires = t0.Add(time.Hour) })
	office := netip.MustParseAddr("192.0.2.5")
	login := func(secret string, from netip.Addr) Decision {
		t.Helper()
		a := attempt(alice, secret)
		a.RemoteIP = from
		d := f.verifyOnce(t, a)
		if d.Result != OK {
			t.Fatalf("login from %v: %v", from, d.Result)
		}
		return d
	}
	laptop, primary := login(f.pw["alice/laptop"].Password, clientIP), login("Alice Primary 1", clientIP)
	fromOffice, expiring := login(f.pw["alice/office"].Password, office), login(soon.Password, clientIP)
	if got := expiring.Expires(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("Expires() = %v, want %v", got, t0.Add(time.Hour))
	}
	if got := laptop.Expires(); !got.IsZero() {
		t.Errorf("Expires() of an app password without expiry = %v", got)
	}

	// now reads what the store holds for d's credential.
	now := func(d Decision) store.SessionState {
		t.Helper()
		st, err := f.st.CheckSessions(context.Background(), []store.SessionRef{{Username: d.Username, AppPasswordID: d.AppPasswordID}})
		if err != nil {
			t.Fatal(err)
		}
		return st[0]
	}
	edit := func(d Decision, fn func(*store.SessionState)) store.SessionState {
		st := now(d)
		if st.Account != nil {
			a := *st.Account
			st.Account = &a
		}
		if st.AppPassword != nil {
			p := *st.AppPassword
			st.AppPassword = &p
		}
		fn(&st)
		return st
	}
	imap, smtp := store.ScopeIMAP, store.ScopeSMTP
	for _, tc := range []struct {
		name   string
		d      Decision
		cur    store.SessionState
		proto  store.Scope
		remote netip.Addr
		at     time.Time
		want   Result
	}{
		{"app password unchanged", laptop, now(laptop), imap, clientIP, t0, OK},
		{"app password revoked", laptop, edit(laptop, func(s *store.SessionState) { s.AppPassword = nil }), imap, clientIP, t0, BadSecret},
		{"another app password", laptop, edit(laptop, func(s *store.SessionState) { s.AppPassword.ID = "other" }), imap, clientIP, t0, BadSecret},
		{"account gone", laptop, store.SessionState{}, imap, clientIP, t0, UnknownUser},
		{"account disabled", laptop, edit(laptop, func(s *store.SessionState) { s.Account.Disabled = true }), imap, clientIP, t0, Disabled},
		{"MFA on keeps app passwords", laptop, edit(laptop, func(s *store.SessionState) { s.Account.MFA = true }), imap, clientIP, t0, OK},
		{"scope removed", laptop, edit(laptop, func(s *store.SessionState) { s.AppPassword.Scopes = []store.Scope{smtp} }), imap, clientIP, t0, ScopeDenied},
		{"other protocol", laptop, now(laptop), "nntp", clientIP, t0, ScopeDenied},
		{"before expiry", expiring, now(expiring), imap, clientIP, t0.Add(time.Hour - time.Nanosecond), OK},
		{"at expiry", expiring, now(expiring), imap, clientIP, t0.Add(time.Hour), Expired},
		{"allowed network", fromOffice, now(fromOffice), imap, office, t0, OK},
		{"other network", fromOffice, now(fromOffice), imap, clientIP, t0, AddressDenied},
		{"primary unchanged", primary, now(primary), imap, clientIP, t0, OK},
		{"primary changed", primary, edit(primary, func(s *store.SessionState) { s.Account.PasswordHash += "x" }), imap, clientIP, t0, BadSecret},
		{"primary removed", primary, edit(primary, func(s *store.SessionState) { s.Account.PasswordHash = "" }), imap, clientIP, t0, BadSecret},
		{"primary, MFA on", primary, edit(primary, func(s *store.SessionState) { s.Account.MFA = true }), imap, clientIP, t0, PrimaryRefusedMFA},
		{"primary, disabled", primary, edit(primary, func(s *store.SessionState) { s.Account.Disabled = true }), imap, clientIP, t0, Disabled},
		{"primary without the verified hash", Decision{Result: OK, Username: alice}, now(primary), imap, clientIP, t0, BadSecret},
		{"not an OK decision", Decision{Result: RateLimited, Username: alice}, now(primary), imap, clientIP, t0, RateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Revalidate(tc.cur, tc.proto, tc.remote, tc.at); got != tc.want {
				t.Errorf("Revalidate = %v, want %v", got, tc.want)
			}
		})
	}
}
