package authn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

var (
	t0       = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clientIP = netip.MustParseAddr("198.51.100.7")
)

// fixture is a Verifier over a memStore with a fixed clock and a log buffer.
type fixture struct {
	v    *Verifier
	st   *memStore
	logs *bytes.Buffer
	pw   map[string]testAppPassword // by "localpart/name"
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: newMemStore(), logs: &bytes.Buffer{}, pw: map[string]testAppPassword{}}
	f.v = &Verifier{
		Store:  f.st,
		Params: cheap,
		Now:    func() time.Time { return t0 },
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return f
}

func (f *fixture) account(t *testing.T, user, primary string, mfa bool) {
	t.Helper()
	if err := createAccount(context.Background(), f.v, user, primary, mfa); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) appPassword(t *testing.T, user, name string, scopes ...store.Scope) testAppPassword {
	t.Helper()
	if scopes == nil {
		scopes = store.AllScopes
	}
	np, err := createAppPassword(context.Background(), f.v, user, name, scopes, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	local, _, _ := strings.Cut(user, "@")
	f.pw[local+"/"+name] = np
	return np
}

func attempt(user, secret string) Attempt {
	return Attempt{Username: user, Secret: secret, Protocol: store.ScopeIMAP, RemoteIP: clientIP,
		Client: "Thunderbird 128", Mechanism: "PLAIN"}
}

// verifyOnce runs Verify and checks that it cost exactly one argon2id.
func (f *fixture) verifyOnce(t *testing.T, a Attempt) Decision {
	t.Helper()
	before := f.v.HashEvaluations()
	d, err := f.v.Verify(context.Background(), a)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := f.v.HashEvaluations() - before; n != 1 {
		t.Errorf("Verify ran %d argon2id evaluations, want 1", n)
	}
	return d
}

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"   // MFA
	carol = "carol@example.com" // disabled
	dave  = "dave@example.com"  // no primary password
)

// population creates the accounts and app passwords of TestVerify.
func population(t *testing.T) *fixture {
	f := newFixture(t)
	ctx := context.Background()
	f.account(t, alice, "Alice Primary 1", false)
	f.account(t, bob, "Bob Primary 22", true)
	f.account(t, carol, "Carol Primary 3", false)
	f.account(t, dave, "", false)
	f.appPassword(t, alice, "laptop")
	f.appPassword(t, alice, "phone", store.ScopeSMTP)
	exp := f.appPassword(t, alice, "expiring")
	f.st.editApp(alice, exp.ID, func(p *store.AppPassword) { p.Expires = t0 }) // expires now
	office := f.appPassword(t, alice, "office")
	f.st.editApp(alice, office.ID, func(p *store.AppPassword) {
		p.AllowFrom = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	})
	gone := f.appPassword(t, alice, "revoked")
	if err := f.st.RevokeAppPassword(ctx, alice, gone.ID); err != nil {
		t.Fatal(err)
	}
	f.appPassword(t, bob, "mail")
	f.appPassword(t, carol, "mail")
	f.appPassword(t, dave, "mail")
	if err := f.st.UpdateAccount(ctx, carol, func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerify(t *testing.T) {
	f := population(t)
	pw := func(key string) string { return f.pw[key].Password }
	id := func(key string) string { return f.pw[key].ID }
	wrong, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		user     string
		secret   string
		proto    store.Scope
		ip       string
		want     Result
		wantUser string
		wantID   string
	}{
		{name: "app password as displayed", user: alice, secret: pw("alice/laptop"), want: OK, wantUser: alice, wantID: id("alice/laptop")},
		{name: "app password upper case without spaces", user: alice, secret: strings.ToUpper(strings.ReplaceAll(pw("alice/laptop"), " ", "")), want: OK, wantUser: alice, wantID: id("alice/laptop")},
		{name: "app password with dashes", user: alice, secret: strings.ReplaceAll(pw("alice/laptop"), " ", "-"), want: OK, wantUser: alice, wantID: id("alice/laptop")},
		{name: "username case and spaces", user: "  Alice@Example.COM ", secret: pw("alice/laptop"), want: OK, wantUser: alice, wantID: id("alice/laptop")},
		{name: "wrong secret", user: alice, secret: wrong, want: BadSecret, wantUser: alice},
		{name: "another user's app password", user: alice, secret: pw("bob/mail"), want: BadSecret, wantUser: alice},
		{name: "unknown user", user: "nobody@example.com", secret: pw("alice/laptop"), want: UnknownUser, wantUser: "nobody@example.com"},
		{name: "invalid username", user: "al ice@example.com", secret: pw("alice/laptop"), want: BadSecret},
		{name: "master separator in username", user: "alice*proxy", secret: pw("alice/laptop"), want: BadSecret},
		{name: "empty secret", user: alice, secret: "", want: BadSecret, wantUser: alice},
		{name: "secret too long", user: alice, secret: strings.Repeat("a", MaxSecretLen+1), want: BadSecret, wantUser: alice},
		{name: "disabled, right app password", user: carol, secret: pw("carol/mail"), want: Disabled, wantUser: carol, wantID: id("carol/mail")},
		{name: "disabled, wrong secret", user: carol, secret: wrong, want: BadSecret, wantUser: carol},
		{name: "disabled, right primary", user: carol, secret: "Carol Primary 3", want: Disabled, wantUser: carol},
		{name: "MFA, right primary", user: bob, secret: "Bob Primary 22", want: PrimaryRefusedMFA, wantUser: bob},
		{name: "MFA, wrong primary", user: bob, secret: "Bob Primary 23", want: BadSecret, wantUser: bob},
		{name: "MFA, app password", user: bob, secret: pw("bob/mail"), want: OK, wantUser: bob, wantID: id("bob/mail")},
		{name: "primary password", user: alice, secret: "Alice Primary 1", want: OK, wantUser: alice},
		{name: "primary password is case sensitive", user: alice, secret: "alice primary 1", want: BadSecret, wantUser: alice},
		{name: "primary password is space sensitive", user: alice, secret: "AlicePrimary1", want: BadSecret, wantUser: alice},
		{name: "no primary password", user: dave, secret: "Dave Primary 4", want: BadSecret, wantUser: dave},
		{name: "no primary password, app password", user: dave, secret: pw("dave/mail"), want: OK, wantUser: dave, wantID: id("dave/mail")},
		{name: "expired", user: alice, secret: pw("alice/expiring"), want: Expired, wantUser: alice, wantID: id("alice/expiring")},
		{name: "smtp-only password for imap", user: alice, secret: pw("alice/phone"), want: ScopeDenied, wantUser: alice, wantID: id("alice/phone")},
		{name: "smtp-only password for smtp", user: alice, secret: pw("alice/phone"), proto: store.ScopeSMTP, want: OK, wantUser: alice, wantID: id("alice/phone")},
		{name: "unknown protocol", user: alice, secret: pw("alice/laptop"), proto: "nntp", want: ScopeDenied, wantUser: alice, wantID: id("alice/laptop")},
		{name: "address denied", user: alice, secret: pw("alice/office"), want: AddressDenied, wantUser: alice, wantID: id("alice/office")},
		{name: "address allowed", user: alice, secret: pw("alice/office"), ip: "192.0.2.9", want: OK, wantUser: alice, wantID: id("alice/office")},
		{name: "address allowed, IPv4-mapped", user: alice, secret: pw("alice/office"), ip: "::ffff:192.0.2.9", want: OK, wantUser: alice, wantID: id("alice/office")},
		{name: "address allowed, IPv6", user: alice, secret: pw("alice/office"), ip: "2001:db8::25", want: OK, wantUser: alice, wantID: id("alice/office")},
		{name: "revoked", user: alice, secret: pw("alice/revoked"), want: BadSecret, wantUser: alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := attempt(tc.user, tc.secret)
			if tc.proto != "" {
				a.Protocol = tc.proto
			}
			if tc.ip != "" {
				a.RemoteIP = netip.MustParseAddr(tc.ip)
			}
			d := f.verifyOnce(t, a)
			if d.Result != tc.want || d.Username != tc.wantUser || d.AppPasswordID != tc.wantID {
				t.Errorf("Verify = %+v; want result %s, username %q, app password %q", d, tc.want, tc.wantUser, tc.wantID)
			}
			if d.AppPasswordID != "" && d.AppPasswordName == "" {
				t.Errorf("Verify = %+v: app password ID without name", d)
			}
		})
	}
	if f.logs.Len() > 0 {
		t.Errorf("unexpected log output:\n%s", f.logs)
	}
}

func TestVerifyRecordsLastUse(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np := f.appPassword(t, alice, "laptop")
	a := attempt(alice, np.Password)
	a.Protocol = store.ScopeSMTP
	if d := f.verifyOnce(t, a); d.Result != OK {
		t.Fatalf("Verify = %+v, want OK", d)
	}
	p, _ := f.st.app(alice, np.ID)
	want := store.LastUse{Time: t0, IP: clientIP, Protocol: "smtp", Client: "Thunderbird 128"}
	if p.LastUsed != want {
		t.Errorf("last use = %+v, want %+v", p.LastUsed, want)
	}

	// A refused login is not a use.
	f.st.editApp(alice, np.ID, func(p *store.AppPassword) { p.LastUsed = store.LastUse{}; p.Scopes = []store.Scope{store.ScopeIMAP} })
	if d := f.verifyOnce(t, a); d.Result != ScopeDenied {
		t.Fatalf("Verify = %+v, want ScopeDenied", d)
	}
	if p, _ := f.st.app(alice, np.ID); !p.LastUsed.Time.IsZero() {
		t.Errorf("refused login recorded last use %+v", p.LastUsed)
	}
}

func TestVerifyTouchFailure(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np := f.appPassword(t, alice, "laptop")

	f.st.set(func(m *memStore) { m.failTouch = fmt.Errorf("%w: disk full", store.ErrUnavailable) })
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != OK {
		t.Errorf("touch failed: Verify = %+v, want OK (a failed last-use update must not fail the login)", d)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "disk full") {
		t.Errorf("touch failure not logged as a warning:\n%s", logs)
	}
	if strings.Contains(logs, np.Password) || strings.Contains(logs, NormalizeSecret(np.Password)) {
		t.Errorf("log contains the app password:\n%s", logs)
	}

	// Revoked between FindAppPassword and TouchAppPassword.
	f.st.set(func(m *memStore) { m.failTouch = store.ErrNotFound })
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != BadSecret || d.AppPasswordID != "" {
		t.Errorf("revoked during login: Verify = %+v, want BadSecret without app password", d)
	}
}

func TestVerifyStoreErrors(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "Alice Primary 1", false)
	np := f.appPassword(t, alice, "laptop")
	f.v = &Verifier{Store: f.st, Params: cheap} // fresh: lookup key not cached
	for _, tc := range []struct {
		name   string
		inject func(m *memStore, err error)
	}{
		{"get account", func(m *memStore, err error) { m.failGet = err }},
		{"lookup key", func(m *memStore, err error) { m.failKey = err }},
		{"find app password", func(m *memStore, err error) { m.failFind = err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			injected := fmt.Errorf("%w: connection refused", store.ErrUnavailable)
			f.st.set(func(m *memStore) { tc.inject(m, injected) })
			defer f.st.set(func(m *memStore) { tc.inject(m, nil) })
			for _, secret := range []string{np.Password, "Alice Primary 1", "wrong"} {
				d, err := f.v.Verify(context.Background(), attempt(alice, secret))
				if !errors.Is(err, store.ErrUnavailable) || d.Result == OK {
					t.Fatalf("Verify = %+v, %v; want an error wrapping ErrUnavailable", d, err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the secret", err)
				}
			}
		})
	}
	// Once the store is back, logins work.
	if d, err := f.v.Verify(context.Background(), attempt(alice, np.Password)); err != nil || d.Result != OK {
		t.Errorf("after recovery: Verify = %+v, %v; want OK", d, err)
	}
}

func TestVerifyTagCollision(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np := f.appPassword(t, alice, "laptop")
	other, err := cheap.Hash([]byte("somethingelse234"))
	if err != nil {
		t.Fatal(err)
	}
	f.st.editApp(alice, np.ID, func(p *store.AppPassword) { p.Verifier = other })
	if d := f.verifyOnce(t, attempt(alice, np.Password)); d.Result != BadSecret || d.AppPasswordID != "" {
		t.Errorf("tag matches, verifier does not: Verify = %+v, want BadSecret", d)
	}
}

func TestVerifyOlderParams(t *testing.T) {
	f := newFixture(t)
	old, err := Params{MemoryKiB: 128, Time: 2, Threads: 2}.Hash([]byte("Alice Primary 1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateAccount(context.Background(), store.Account{Username: alice, PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	if d := f.verifyOnce(t, attempt(alice, "Alice Primary 1")); d.Result != OK {
		t.Errorf("hash with older params: Verify = %+v, want OK", d)
	}
}

func TestVerifyMalformedStoredHash(t *testing.T) {
	f := newFixture(t)
	if err := f.st.CreateAccount(context.Background(), store.Account{Username: alice, PasswordHash: "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"}); err != nil {
		t.Fatal(err)
	}
	d, err := f.v.Verify(context.Background(), attempt(alice, "Alice Primary 1"))
	if !errors.Is(err, ErrMalformedHash) || d.Result == OK {
		t.Fatalf("Verify = %+v, %v; want ErrMalformedHash", d, err)
	}
	if strings.Contains(err.Error(), "Alice Primary 1") {
		t.Errorf("error %q contains the secret", err)
	}
}

// TestOneHashPerLogin: whatever the number of app passwords, a login runs
// one argon2id evaluation, so unknown users, wrong secrets and right ones
// cost the same.
func TestOneHashPerLogin(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "Alice Primary 1", false)
	var all []testAppPassword
	for i := range 40 {
		all = append(all, f.appPassword(t, alice, fmt.Sprintf("device %d", i+1)))
	}
	if got, _ := f.st.ListAppPasswords(context.Background(), alice); len(got) != 40 {
		t.Fatalf("account has %d app passwords, want 40", len(got))
	}
	wrong, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, secret string
		want               Result
	}{
		{"1st app password", alice, all[0].Password, OK},
		{"20th app password", alice, all[19].Password, OK},
		{"40th app password", alice, all[39].Password, OK},
		{"wrong secret", alice, wrong, BadSecret},
		{"primary password", alice, "Alice Primary 1", OK},
		{"wrong primary password", alice, "Alice Primary 2", BadSecret},
		{"unknown user", "mallory@example.com", all[0].Password, UnknownUser},
		{"invalid username", "", all[0].Password, BadSecret},
		{"empty secret", alice, "", BadSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := f.verifyOnce(t, attempt(tc.user, tc.secret)); d.Result != tc.want {
				t.Errorf("Verify = %+v, want %s", d, tc.want)
			}
		})
	}
}

// TestDummyHashUsesParams: the hash run for unknown users has the cost of
// the configured params, so it takes as long as a real verification.
func TestDummyHashUsesParams(t *testing.T) {
	v := &Verifier{Store: newMemStore(), Params: Params{MemoryKiB: 256, Time: 3, Threads: 2}}
	if d, err := v.Verify(context.Background(), attempt("nobody@example.com", "x")); err != nil || d.Result != UnknownUser {
		t.Fatalf("Verify = %+v, %v; want UnknownUser", d, err)
	}
	if !strings.HasPrefix(v.dummy, "$argon2id$v=19$m=256,t=3,p=2$") {
		t.Errorf("dummy hash %q does not use the configured params", v.dummy)
	}
	if v.HashEvaluations() != 1 {
		t.Errorf("HashEvaluations = %d, want 1", v.HashEvaluations())
	}
	bad := &Verifier{Store: newMemStore(), Params: Params{MemoryKiB: 64, Time: 0, Threads: 1}}
	if _, err := bad.Verify(context.Background(), attempt("nobody@example.com", "x")); err == nil {
		t.Error("Verify with invalid params: no error")
	}
}

// TestVerifyConcurrent exercises the cached lookup key and dummy hash from
// several goroutines (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	f.account(t, alice, "", false)
	np := f.appPassword(t, alice, "laptop")
	f.v = &Verifier{Store: f.st, Params: cheap} // fresh caches
	const workers, rounds = 8, 5
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for range rounds {
				user, want := alice, OK
				if w%2 == 1 {
					user, want = "nobody@example.com", UnknownUser
				}
				d, err := f.v.Verify(context.Background(), attempt(user, np.Password))
				if err == nil && d.Result != want {
					err = fmt.Errorf("%s: got %s, want %s", user, d.Result, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := f.v.HashEvaluations(); n != workers*rounds {
		t.Errorf("HashEvaluations = %d, want %d", n, workers*rounds)
	}
}
