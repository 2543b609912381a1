package account

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

const day = 24 * time.Hour

// names returns the app password names of list.
func names(list []StaleAppPassword) []string {
	var out []string
	for _, p := range list {
		out = append(out, p.Username+"/"+p.Name)
	}
	return out
}

// On a controlled clock: a password unused for unused_after (counted from
// creation if never used) is warned about once, then revoked with its
// revocation event; one used recently and a young one are kept.
func TestRetireUnused(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	f.user(t, bob, "", false)
	ctx := context.Background()
	now := t0
	f.svc.Now = func() time.Time { return now }
	f.svc.Retire = Retirement{After: 90 * day, WarnBefore: 14 * day}

	old := f.appPassword(t, alice, "never used") // idle since t0
	used := f.appPassword(t, alice, "used")      // created t0, used at t0+80d
	now = t0.Add(60 * day)
	young := f.appPassword(t, bob, "young") // idle since t0+60d
	if err := f.st.TouchAppPassword(ctx, alice, used.ID, store.LastUse{Time: t0.Add(80 * day),
		IP: netip.MustParseAddr("192.0.2.1"), Protocol: "imap"}); err != nil {
		t.Fatal(err)
	}
	events, err := f.st.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Before the warning period: nothing.
	now = t0.Add(75 * day)
	rep := f.retire(t, false)
	if len(rep.Retired)+len(rep.Warned) != 0 {
		t.Fatalf("day 75: %+v, want nothing", rep)
	}
	// Day 77: "never used" is in its warning period, announced once.
	now = t0.Add(77 * day)
	if rep := f.retire(t, false); !slices.Equal(names(rep.Warned), []string{alice + "/never used"}) || len(rep.Retired) != 0 {
		t.Fatalf("day 77: warned %v retired %v, want only alice's never used warned", names(rep.Warned), names(rep.Retired))
	}
	now = t0.Add(78 * day)
	if rep := f.retire(t, false); len(rep.Warned) != 0 {
		t.Errorf("day 78: warned again: %v", names(rep.Warned))
	}
	warnings := 0
	for _, r := range f.records(t, alice) {
		if r.Result == ResultAppPasswordRetireWarning {
			warnings++
			if r.AppPasswordID != old.ID || r.Actor != "system:retire" || r.RemovalOn.Format(time.DateOnly) != "2025-05-30" || r.Client != "" {
				t.Errorf("warning record %+v, want app password %s, actor system:retire, removal on 2025-05-30", r, old.ID)
			}
		}
	}
	if warnings != 1 {
		t.Errorf("%d warning records in alice's trail, want 1", warnings)
	}

	// Day 90, dry run: reported, nothing revoked.
	now = t0.Add(90 * day)
	if rep := f.retire(t, true); !slices.Equal(names(rep.Retired), []string{alice + "/never used"}) || !rep.DryRun {
		t.Fatalf("dry run: %+v", rep)
	}
	if r := f.login(t, alice, old.Password); r != authn.OK {
		t.Fatalf("after the dry run the password logs in: %v, want ok", r)
	}
	// Day 90: revoked, with the event that ends its sessions.
	if rep := f.retire(t, false); !slices.Equal(names(rep.Retired), []string{alice + "/never used"}) {
		t.Fatalf("day 90: retired %v", names(rep.Retired))
	}
	select {
	case ev := <-events:
		if ev.Kind != store.EventAppPasswordRevoked || ev.Username != alice || ev.AppPasswordID != old.ID {
			t.Errorf("event %+v, want the revocation of %s", ev, old.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation event")
	}
	if r := f.login(t, alice, old.Password); r == authn.OK {
		t.Error("the retired password still logs in")
	}
	recs := f.records(t, alice)
	if last := recs[len(recs)-1]; last.Result != ResultAppPasswordRetired || last.AppPasswordID != old.ID || last.Actor != "system:retire" {
		t.Errorf("last record %+v, want the retirement by system:retire", last)
	}
	for _, np := range []NewAppPassword{used, young} {
		user := alice
		if np.ID == young.ID {
			user = bob
		}
		f.stored(t, user, np.ID) // kept
	}

	// The stale report: idle for at least 25 days on day 90 is bob's young
	// one (30 days); alice's used one is 10 days idle.
	stale, err := f.svc.Stale(ctx, 25*day)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(stale), []string{bob + "/young"}) || !stale[0].IdleSince.Equal(t0.Add(60*day)) ||
		!stale[0].RetireAt.Equal(t0.Add(150*day)) {
		t.Errorf("Stale(25d) = %+v, want bob/young idle since day 60, removed on day 150", stale)
	}
	if stale, _ := f.svc.Stale(ctx, 5*day); !slices.Equal(names(stale), []string{alice + "/used", bob + "/young"}) {
		t.Errorf("Stale(5d) = %v", names(stale))
	}

	// Off: an error, nothing done.
	f.svc.Retire = Retirement{}
	if _, err := f.svc.RetireUnused(ctx, SystemRetire, false); err == nil || !strings.Contains(err.Error(), "authn.unused_after") {
		t.Errorf("with the policy off: %v, want an error naming authn.unused_after", err)
	}
}

func (f *fixture) retire(t *testing.T, dry bool) RetireReport {
	t.Helper()
	rep, err := f.svc.RetireUnused(context.Background(), SystemRetire, dry)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The serve job retires at once, then waits for its interval; off, it
// returns.
func TestRunRetirement(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	old := f.appPassword(t, alice, "old")
	f.svc.Now = func() time.Time { return t0.Add(91 * day) }
	RunRetirement(context.Background(), f.svc, time.Hour) // policy off: returns
	f.svc.Retire = Retirement{After: 90 * day}
	events, err := f.st.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunRetirement(ctx, f.svc, time.Hour) }()
	select {
	case ev := <-events:
		if ev.AppPasswordID != old.ID {
			t.Errorf("event %+v, want the revocation of %s", ev, old.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job revoked nothing")
	}
	cancel()
	<-done
}
