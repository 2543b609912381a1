package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// dirFixture is a Verifier whose accounts come from an in-memory
// directory, with a fake clock for the directory's cache.
type dirFixture struct {
	v   *Verifier
	st  *memStore
	dir *dirtest.Memory
	clk *fakeClock
}

const (
	dirAlice   = "alice@example.org"
	dirAlicePW = "Alice's directory password"
)

func newDirFixture(t *testing.T) *dirFixture {
	t.Helper()
	clk := &fakeClock{t: t0}
	names := directory.Names{DefaultDomain: "example.org"}
	f := &dirFixture{st: newMemStore(), dir: &dirtest.Memory{Names: names}, clk: clk}
	f.dir.Set(directory.Entry{Username: dirAlice, ID: "uid=alice", Addresses: []string{dirAlice, "a.smith@example.org"}}, dirAlicePW)
	f.v = &Verifier{Store: f.st, Params: cheap, Now: clk.Now, Names: names, Logger: slog.New(slog.DiscardHandler),
		Directory: &Directory{Dir: f.dir, Kind: "test", Admin: true, Now: clk.Now}}
	return f
}

func (f *dirFixture) verify(t *testing.T, a Attempt) Decision {
	t.Helper()
	d, err := f.v.Verify(context.Background(), a)
	if err != nil {
		t.Fatalf("Verify(%s): %v", a.Username, err)
	}
	return d
}

// signIn is a portal sign-in (which provisions MFA accounts too).
func portalAttempt(user, secret string) Attempt {
	a := attempt(user, secret)
	a.Protocol = "portal"
	return a
}

// appPassword provisions alice with a primary login and gives her an app
// password.
func (f *dirFixture) appPassword(t *testing.T) testAppPassword {
	t.Helper()
	if d := f.verify(t, portalAttempt(dirAlice, dirAlicePW)); d.Result != OK {
		t.Fatalf("first sign-in: %v", d.Result)
	}
	p, err := createAppPassword(context.Background(), f.v, dirAlice, "phone", nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDirectoryProvisions: the first primary login the directory vouches
// for creates the account, without a primary password, with the
// directory's addresses and admin role.
func TestDirectoryProvisions(t *testing.T) {
	f := newDirFixture(t)
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.Admin = true })
	if _, err := f.st.GetAccount(context.Background(), dirAlice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account exists before any login: %v", err)
	}
	d := f.verify(t, attempt("Alice", dirAlicePW)) // default domain, any case
	if d.Result != OK || d.Username != dirAlice || d.AppPasswordID != "" {
		t.Fatalf("primary login through the directory: %+v", d)
	}
	a, err := f.st.GetAccount(context.Background(), dirAlice)
	if err != nil {
		t.Fatalf("not provisioned: %v", err)
	}
	if a.PasswordHash != "" || a.Directory != "test" || !a.Admin || !slices.Equal(a.Aliases, []string{"a.smith@example.org"}) || a.MFA {
		t.Fatalf("provisioned account %+v, want no hash, Directory test, admin, the alias, no MFA", a)
	}

	// The directory takes the role away: the next vouching removes it.
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.Admin = false })
	f.verify(t, attempt(dirAlice, dirAlicePW))
	if a, _ := f.st.GetAccount(context.Background(), dirAlice); a.Admin {
		t.Fatal("admin role kept after the directory removed it")
	}

	// Wrong passwords and unknown users provision nothing.
	if d := f.verify(t, attempt("bob", "whatever it is")); d.Result == OK {
		t.Fatalf("unknown user: %v", d.Result)
	}
	if accts, _ := f.st.ListAccounts(context.Background()); len(accts) != 1 {
		t.Fatalf("accounts after failed logins: %+v", accts)
	}
}

// TestDirectoryAdoptsOwnAccount: an account passgate kept itself before the
// directory was configured becomes the directory's at its first vouched
// login, and its primary password hash is dropped.
func TestDirectoryAdoptsOwnAccount(t *testing.T) {
	f := newDirFixture(t)
	own := &Verifier{Store: f.st, Params: cheap}
	if err := createAccount(context.Background(), own, dirAlice, "the old passgate password", false); err != nil {
		t.Fatal(err)
	}
	if d := f.verify(t, attempt(dirAlice, "the old passgate password")); d.Result != BadSecret {
		t.Fatalf("the old passgate password still works with a directory: %v", d.Result)
	}
	if d := f.verify(t, attempt(dirAlice, dirAlicePW)); d.Result != OK {
		t.Fatalf("directory password: %v", d.Result)
	}
	if a, _ := f.st.GetAccount(context.Background(), dirAlice); a.PasswordHash != "" || a.Directory != "test" {
		t.Fatalf("adopted account %+v, want no hash and Directory test", a)
	}
}

// TestDirectoryNeverSeesAppPasswords: an app password is checked by
// passgate and never sent to the directory, right or wrong; a secret
// shaped like an app password that matches none (revoked, mistyped) costs
// one hash and is not sent either, so a phone still using a revoked app
// password cannot lock the account in the directory.
func TestDirectoryNeverSeesAppPasswords(t *testing.T) {
	f := newDirFixture(t)
	p := f.appPassword(t)
	auths := f.dir.Authentications()

	if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != OK || d.AppPasswordID != p.ID {
		t.Fatalf("app password login: %+v", d)
	}
	if err := f.st.RevokeAppPassword(context.Background(), dirAlice, p.ID); err != nil {
		t.Fatal(err)
	}
	other, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{p.Password, other, NormalizeSecret(other)} {
		before := f.v.HashEvaluations()
		if d := f.verify(t, attempt(dirAlice, secret)); d.Result != BadSecret {
			t.Fatalf("revoked or unknown app password: %v", d.Result)
		}
		if n := f.v.HashEvaluations() - before; n != 1 {
			t.Errorf("a wrong app password cost %d hashes, want 1", n)
		}
	}
	if n := f.dir.Authentications() - auths; n != 0 {
		t.Fatalf("the directory got %d authentications for app passwords", n)
	}
	for _, secret := range []string{p.Password, NormalizeSecret(p.Password), other} {
		if f.dir.Received(secret) {
			t.Fatal("an app password reached the directory")
		}
	}
	// A wrong password of another shape goes to the directory.
	if d := f.verify(t, attempt(dirAlice, "Alice's old password")); d.Result != BadSecret || f.dir.Authentications() != auths+1 {
		t.Fatalf("wrong primary password: %v, %d authentications", d.Result, f.dir.Authentications()-auths)
	}
}

// TestDirectoryEqualWork: for a wrong password, a user the directory does
// not know costs what a known one costs, provisioned or not: one request to
// the directory and no hash; a secret shaped like an app password, one
// hash and no request.
func TestDirectoryEqualWork(t *testing.T) {
	f := newDirFixture(t)
	f.dir.Set(directory.Entry{Username: "bob@example.org"}, "Bob's password")
	f.appPassword(t) // alice is provisioned, bob is not
	shaped, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"a wrong password", shaped} {
		var costs [][2]int64
		for _, user := range []string{dirAlice, "bob@example.org", "nobody@example.org"} {
			hashes, auths := f.v.HashEvaluations(), f.dir.Authentications()
			if d := f.verify(t, attempt(user, secret)); d.Result == OK {
				t.Fatalf("%s: %v", user, d.Result)
			}
			costs = append(costs, [2]int64{f.v.HashEvaluations() - hashes, f.dir.Authentications() - auths})
		}
		if costs[0] != costs[1] || costs[1] != costs[2] {
			t.Fatalf("(hashes, directory requests) for provisioned, known, unknown: %v: want the same", costs)
		}
	}
}

// TestDirectoryStateCached: an app-password login checks the account in
// the directory, cached for CacheTTL: a disabled or deleted account is
// refused once the cached state expires, and not before.
func TestDirectoryStateCached(t *testing.T) {
	for _, change := range []struct {
		name string
		do   func(m *dirtest.Memory)
		want Result
	}{
		{"disabled", func(m *dirtest.Memory) { m.Update(dirAlice, func(e *directory.Entry) { e.Disabled = true }) }, Disabled},
		{"deleted", func(m *dirtest.Memory) { m.Delete(dirAlice) }, UnknownUser},
	} {
		t.Run(change.name, func(t *testing.T) {
			f := newDirFixture(t)
			p := f.appPassword(t)
			lookups := f.dir.Lookups()
			change.do(f.dir)
			f.clk.advance(DefaultDirectoryCacheTTL - time.Second)
			if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != OK {
				t.Fatalf("within the cache time: %v, want the cached state (OK)", d.Result)
			}
			if n := f.dir.Lookups() - lookups; n != 0 {
				t.Fatalf("%d lookups within the cache time", n)
			}
			f.clk.advance(time.Second)
			if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != change.want {
				t.Fatalf("after the cache time: %v, want %v", d.Result, change.want)
			}
		})
	}
	t.Run("no cache", func(t *testing.T) {
		f := newDirFixture(t)
		f.v.Directory.CacheTTL = -1
		p := f.appPassword(t)
		f.verify(t, attempt(dirAlice, p.Password))
		f.verify(t, attempt(dirAlice, p.Password))
		if n := f.dir.Lookups(); n != 2 {
			t.Fatalf("%d lookups for 2 logins without a cache", n)
		}
		f.dir.Update(dirAlice, func(e *directory.Entry) { e.Disabled = true })
		if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != Disabled {
			t.Fatalf("disabled, no cache: %v", d.Result)
		}
	})
}

// TestDirectoryUnavailable: the cached state serves while the directory is
// down, until it expires; then logins fail as temporary failures, never
// accepted.
func TestDirectoryUnavailable(t *testing.T) {
	f := newDirFixture(t)
	p := f.appPassword(t)
	f.dir.SetDown(true)
	f.clk.advance(DefaultDirectoryCacheTTL / 2)
	if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != OK {
		t.Fatalf("directory down, state cached: %v", d.Result)
	}
	f.clk.advance(DefaultDirectoryCacheTTL / 2)
	d, err := f.v.Verify(context.Background(), attempt(dirAlice, p.Password))
	if err == nil || !errors.Is(err, directory.ErrUnavailable) || d.Result == OK {
		t.Fatalf("directory down, cache expired: %+v, %v; want a temporary failure", d, err)
	}
	d, err = f.v.Verify(context.Background(), attempt(dirAlice, dirAlicePW))
	if err == nil || d.Result == OK {
		t.Fatalf("primary password, directory down: %+v, %v; want a temporary failure", d, err)
	}
	f.dir.SetDown(false)
	if d := f.verify(t, attempt(dirAlice, p.Password)); d.Result != OK {
		t.Fatalf("directory back: %v", d.Result)
	}
}

// TestDirectoryGuardCache: the Guard's verified-login cache, which lives
// longer than the directory's, does not outlive the directory's refusal of
// an app-password login, and never holds a primary-password login that the
// directory decided.
func TestDirectoryGuardCache(t *testing.T) {
	f := newDirFixture(t)
	p := f.appPassword(t)
	g := &Guard{Verifier: f.v, Counters: &memcount.Counters{Now: f.clk.Now}, Cache: &Cache{TTL: time.Hour},
		Now: f.clk.Now, Sleep: f.clk.Sleep, Logger: slog.New(slog.DiscardHandler)}
	login := func(secret string) Result {
		t.Helper()
		d, err := g.Verify(context.Background(), attempt(dirAlice, secret))
		if err != nil {
			t.Fatalf("Guard.Verify: %v", err)
		}
		return d.Result
	}
	auths, hashes := f.dir.Authentications(), f.v.HashEvaluations()
	for i, secret := range []string{p.Password, dirAlicePW, dirAlicePW, p.Password} {
		if r := login(secret); r != OK {
			t.Fatalf("login %d: %v", i+1, r)
		}
	}
	if n := f.dir.Authentications() - auths; n != 2 {
		t.Fatalf("2 primary logins asked the directory %d times: the directory must decide each", n)
	}
	if n := f.v.HashEvaluations() - hashes; n != 1 {
		t.Fatalf("2 app password logins (primary ones between them) cost %d hashes, want 1 (cached)", n)
	}
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.Disabled = true })
	f.clk.advance(DefaultDirectoryCacheTTL)
	if r := login(p.Password); r == OK {
		t.Fatal("a cached login outlived the directory's refusal")
	}
}

// TestDirectoryMFAPolicy: which accounts must use a second factor, and
// that such an account's primary password is refused for mail (and not
// provisioned there) but leads to the portal's enrolment.
func TestDirectoryMFAPolicy(t *testing.T) {
	const bob, bobPW = "bob@example.org", "Bob's directory password"
	for _, tt := range []struct {
		policy              MFAPolicy
		appOnly             bool
		aliceMFA, bobMFA    bool // must use MFA (alice: no mark; bob: in the MFA group)
		provisionedWithMFA  bool // bob's account after a portal sign-in
		alicePrimaryForMail Result
	}{
		{MFAGroup, false, false, true, true, OK},
		{MFAAll, false, true, true, true, PrimaryRefusedMFA},
		{MFAEnrolled, false, false, false, false, OK},
		{MFAGroup, true, false, true, true, PrimaryRefusedMFA},
	} {
		t.Run(string(tt.policy)+map[bool]string{true: "+app-passwords-only"}[tt.appOnly], func(t *testing.T) {
			f := newDirFixture(t)
			f.v.MFA, f.v.AppPasswordsOnly = tt.policy, tt.appOnly
			f.dir.Set(directory.Entry{Username: bob, MFARequired: true}, bobPW)
			if d := f.verify(t, attempt(dirAlice, dirAlicePW)); d.Result != tt.alicePrimaryForMail {
				t.Fatalf("alice's primary password for mail: %v, want %v", d.Result, tt.alicePrimaryForMail)
			}
			want := OK
			if tt.bobMFA || tt.appOnly {
				want = PrimaryRefusedMFA
			}
			if d := f.verify(t, attempt(bob, bobPW)); d.Result != want {
				t.Fatalf("bob's primary password for mail: %v, want %v", d.Result, want)
			}
			_, err := f.st.GetAccount(context.Background(), bob)
			if provisioned := err == nil; provisioned != (want == OK) {
				t.Fatalf("bob provisioned by a mail login: %v, want %v", provisioned, want == OK)
			}
			if d := f.verify(t, portalAttempt(bob, bobPW)); d.Result != want {
				t.Fatalf("bob's portal sign-in: %v, want %v (the portal goes on to the second factor)", d.Result, want)
			}
			a, err := f.st.GetAccount(context.Background(), bob)
			if err != nil || a.MFA != tt.provisionedWithMFA {
				t.Fatalf("bob after the portal sign-in: %+v, %v; want MFA %v", a, err, tt.provisionedWithMFA)
			}
		})
	}
}

// TestDirectoryCanonicalName: a login the directory knows under another
// name (AD: sAMAccountName, its mail attribute as username) is that
// account in passgate.
func TestDirectoryCanonicalName(t *testing.T) {
	f := newDirFixture(t)
	f.dir.Set(directory.Entry{Username: "jdoe@example.org"}, "John's password")
	canon := &canonical{Memory: f.dir, alias: map[string]string{"john@example.org": "jdoe@example.org"}}
	f.v.Directory.Dir = canon
	d := f.verify(t, attempt("john", "John's password"))
	if d.Result != OK || d.Username != "jdoe@example.org" {
		t.Fatalf("login as john: %+v, want OK as jdoe@example.org", d)
	}
	if _, err := f.st.GetAccount(context.Background(), "jdoe@example.org"); err != nil {
		t.Fatalf("canonical account not provisioned: %v", err)
	}
}

// canonical is a directory that also finds accounts by another name.
type canonical struct {
	*dirtest.Memory
	alias map[string]string
}

func (c *canonical) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	if n, err := c.Names.Normalize(username); err == nil && c.alias[n] != "" {
		username = c.alias[n]
	}
	return c.Memory.Authenticate(ctx, username, password)
}

// TestDirectoryRefusals: what the sessions' reconciliation learns: the
// directory's refusals, asked afresh; an account the directory cannot
// answer for is not refused.
func TestDirectoryRefusals(t *testing.T) {
	f := newDirFixture(t)
	for _, u := range []string{"bob", "carol", "dave"} {
		f.dir.Set(directory.Entry{Username: u + "@example.org"}, u)
	}
	f.dir.Update("bob@example.org", func(e *directory.Entry) { e.Disabled = true })
	f.dir.Delete("carol@example.org")
	users := []string{dirAlice, "bob@example.org", "carol@example.org", "dave@example.org"}
	got := f.v.DirectoryRefusals(context.Background(), users)
	want := map[string]Result{"bob@example.org": Disabled, "carol@example.org": UnknownUser}
	if len(got) != len(want) || got["bob@example.org"] != Disabled || got["carol@example.org"] != UnknownUser {
		t.Fatalf("refusals %v, want %v", got, want)
	}
	// Asked afresh: a change is seen at once, whatever the cache holds.
	f.dir.Update("dave@example.org", func(e *directory.Entry) { e.Disabled = true })
	if got := f.v.DirectoryRefusals(context.Background(), users); got["dave@example.org"] != Disabled {
		t.Fatalf("refusals %v: dave's change not seen", got)
	}
	// Down, with the states cached a moment ago: they serve.
	f.dir.SetDown(true)
	if got := f.v.DirectoryRefusals(context.Background(), users); len(got) != 3 {
		t.Fatalf("directory down, cached: %v", got)
	}
	// Down, the cache expired: nothing refused, nothing accepted.
	f.clk.advance(DefaultDirectoryCacheTTL)
	if got := f.v.DirectoryRefusals(context.Background(), users); len(got) != 0 {
		t.Fatalf("directory down, cache expired: %v, want no refusal", got)
	}
}

// TestDirectoryGuardLimitsShareName: "alice" and "alice@example.org" are one
// account for the Guard's per-account limits.
func TestDirectoryGuardLimitsShareName(t *testing.T) {
	f := newDirFixture(t)
	clk := f.clk
	g := &Guard{Verifier: f.v, Counters: &memcount.Counters{Now: clk.Now}, Limits: Limits{MaxPerAccountAddress: 2},
		Now: clk.Now, Sleep: clk.Sleep, Logger: slog.New(slog.DiscardHandler)}
	for i, login := range []string{"alice", "ALICE@example.org", "Alice"} {
		d, err := g.Verify(context.Background(), attempt(login, "guess "+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 && d.Result != RateLimited {
			t.Fatalf("third failure against alice under another spelling: %v, want %v", d.Result, RateLimited)
		}
	}
}

// TestStoreDirectoryConformance: passgate's own accounts pass the
// directories' conformance suite (what needs a network is skipped).
func TestStoreDirectoryConformance(t *testing.T) {
	st := newMemStore()
	v := &Verifier{Store: st, Params: cheap, Names: directory.Names{DefaultDomain: "example.org"}}
	ctx := context.Background()
	for _, u := range []string{"plain", "changing", "mfa", "admin", "disabled"} {
		if err := createAccount(ctx, v, u+"@example.org", "primary-"+u+"-pw", u == "mfa"); err != nil {
			t.Fatal(err)
		}
	}
	set := func(user string, fn func(*store.Account)) {
		if err := st.UpdateAccount(ctx, user, func(a *store.Account) error { fn(a); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	set("admin@example.org", func(a *store.Account) { a.Admin = true })
	set("disabled@example.org", func(a *store.Account) { a.Disabled = true })
	user := func(name string) dirtest.User { return dirtest.User{Name: name, Password: "primary-" + name + "-pw"} }
	dirtest.Run(t, dirtest.Fixture{
		Dir:   StoreDirectory{V: v},
		Plain: user("plain"), Changing: user("changing"), MFA: user("mfa"), Admin: user("admin"), Disabled: user("disabled"),
		Unknown: "nobody-here",
		Work:    v.HashEvaluations,
		SetPassword: func(t *testing.T, u dirtest.User, password string) {
			h, err := v.HashPassword(password)
			if err != nil {
				t.Fatal(err)
			}
			set(u.Name+"@example.org", func(a *store.Account) { a.PasswordHash = h })
		},
	})
}

// TestLooksLikeAppPassword: the secrets kept from the directory are the
// forms an app password is typed in, not passphrases that happen to have
// sixteen such letters.
func TestLooksLikeAppPassword(t *testing.T) {
	p, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{p, NormalizeSecret(p), strings.ToUpper(p), strings.ReplaceAll(p, " ", "-"), " " + p + "\n",
		strings.ReplaceAll(p, " ", "  ")} {
		if !looksLikeAppPassword(s) {
			t.Errorf("%q (an app password as typed) not recognised", s)
		}
	}
	for _, s := range []string{"measure-primary-pw", "winter is hard ys", NormalizeSecret(p)[:15], NormalizeSecret(p) + "a",
		NormalizeSecret(p)[:15] + "l", NormalizeSecret(p)[:15] + "!", "abc defg hjkm npqrs", "-" + NormalizeSecret(p)[1:], ""} {
		if looksLikeAppPassword(s) {
			t.Errorf("%q taken for an app password", s)
		}
	}
}

// TestDirectoryKnownRefusalsExpire: the Guard's memory of refusals, which
// spares the directory a repeated wrong password, does not outlive the
// directory's cache: an account enabled again, or a password changed
// there, works again within the cache time, not only when the failure
// window (10 minutes) ends.
func TestDirectoryKnownRefusalsExpire(t *testing.T) {
	f := newDirFixture(t)
	g := &Guard{Verifier: f.v, Counters: &memcount.Counters{Now: f.clk.Now}, Now: f.clk.Now, Sleep: f.clk.Sleep,
		Logger: slog.New(slog.DiscardHandler)}
	login := func(secret string) Result {
		t.Helper()
		d, err := g.Verify(context.Background(), attempt(dirAlice, secret))
		if err != nil {
			t.Fatal(err)
		}
		return d.Result
	}
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.Disabled = true })
	if r := login(dirAlicePW); r != Disabled {
		t.Fatalf("disabled: %v", r)
	}
	auths := f.dir.Authentications()
	if r := login(dirAlicePW); r != Disabled || f.dir.Authentications() != auths {
		t.Fatalf("a repeat asked the directory again (%v, %d requests)", r, f.dir.Authentications()-auths)
	}
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.Disabled = false })
	f.clk.advance(DefaultDirectoryCacheTTL)
	if r := login(dirAlicePW); r != OK {
		t.Fatalf("enabled again, a cache time later: %v, want OK", r)
	}

	const next = "Alice's next password"
	if r := login(next); r != BadSecret {
		t.Fatalf("the next password before the change: %v", r)
	}
	f.dir.Set(directory.Entry{Username: dirAlice}, next)
	f.clk.advance(DefaultDirectoryCacheTTL)
	if r := login(next); r != OK {
		t.Fatalf("the new password a cache time after the change: %v, want OK", r)
	}
}

// TestDirectoryRefusalsDirectoryDown: a reconciliation with the directory
// down stops asking after the first failures (each may take the kind's
// whole timeout), so that it does not hold up the next reconciliation for
// as many timeouts as there are accounts with live sessions.
func TestDirectoryRefusalsDirectoryDown(t *testing.T) {
	f := newDirFixture(t)
	var users []string
	for i := range 100 {
		u := fmt.Sprintf("user%d@example.org", i)
		f.dir.Set(directory.Entry{Username: u}, "pw")
		users = append(users, u)
	}
	f.dir.Update(users[0], func(e *directory.Entry) { e.Disabled = true })
	if got := f.v.DirectoryRefusals(context.Background(), users); len(got) != 1 {
		t.Fatalf("refusals with the directory up: %v", got)
	}
	f.dir.SetDown(true)
	for _, wait := range []time.Duration{0, DefaultDirectoryCacheTTL} { // states cached, then expired
		f.clk.advance(wait)
		lookups := f.dir.Lookups()
		got := f.v.DirectoryRefusals(context.Background(), users)
		if want := map[bool]int{true: 1, false: 0}[wait == 0]; len(got) != want {
			t.Fatalf("refusals with the directory down (%v later): %v, want %d (the cached states)", wait, got, want)
		}
		if n := f.dir.Lookups() - lookups; n > maxParallelLookups {
			t.Fatalf("%d lookups of a directory that is down, want at most %d", n, maxParallelLookups)
		}
	}
}

// TestDirectoryMFAGroupJoined: an account that used its primary password
// for mail and then joins the directory's MFA group is refused at its next
// primary login, and gets MFA turned on in the store, which ends its open
// primary-password sessions (the store publishes the change).
func TestDirectoryMFAGroupJoined(t *testing.T) {
	f := newDirFixture(t)
	if d := f.verify(t, attempt(dirAlice, dirAlicePW)); d.Result != OK {
		t.Fatalf("before joining the group: %v", d.Result)
	}
	f.dir.Update(dirAlice, func(e *directory.Entry) { e.MFARequired = true })
	if d := f.verify(t, attempt(dirAlice, dirAlicePW)); d.Result != PrimaryRefusedMFA {
		t.Fatalf("after joining the group: %v", d.Result)
	}
	if a, _ := f.st.GetAccount(context.Background(), dirAlice); !a.MFA {
		t.Fatal("MFA not turned on for the account in the store")
	}
}
