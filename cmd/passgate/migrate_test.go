package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/migrate"
	"github.com/passgate/passgate/store/redis"
)

// cheapArgon keeps the fixtures' hashes fast.
var cheapArgon = authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}

// login is one credential of the fixture and what Verify must decide.
type login struct {
	user, secret string
	proto        store.Scope
	from         netip.Addr
	want         authn.Result
	wantID       string // app password ID the decision names (empty: none)
}

// boltSource is an installation on bolt made through authn, with the
// secrets kept so that logins can be tried after the migration.
type boltSource struct {
	path   string
	logins []login
}

// newBoltSource writes a bolt file with three accounts (one with MFA,
// admin, aliases and TOTP; one with a primary password; one without app
// passwords), three app passwords (one restricted, one used) and five
// audit records over two accounts.
func newBoltSource(t *testing.T) *boltSource {
	t.Helper()
	src := &boltSource{path: filepath.Join(t.TempDir(), "old.db")}
	db, err := bolt.Open(src.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	svc := seedService(db)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const alice, bob, carol = "alice@example.org", "bob@example.org", "carol@example.org"
	must(svc.CreateUser(ctx, seeder, account.NewUser{Username: alice, Password: "alice primary pw", MFA: true}))
	must(svc.CreateUser(ctx, seeder, account.NewUser{Username: bob, Password: "bob primary pw"}))
	must(svc.CreateUser(ctx, seeder, account.NewUser{Username: carol}))
	must(db.UpdateAccount(ctx, alice, func(a *store.Account) error {
		a.Admin = true
		a.Aliases = []string{"a@example.org", "postmaster@example.org"}
		a.TOTP = &store.TOTP{SecretEnc: []byte("sealed totp secret"), Enrolled: time.Now().Add(-time.Hour),
			RecoveryHashes: []string{"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"}}
		return nil
	}))
	office := netip.MustParsePrefix("192.0.2.0/24")
	here0 := netip.MustParseAddr("203.0.113.9")
	outlook, err := svc.CreateAppPassword(ctx, seeder, alice, "Outlook", account.AppPasswordOptions{
		Expires: time.Now().Add(90 * 24 * time.Hour), AllowFrom: []netip.Prefix{office}})
	must(err)
	phone, err := svc.CreateAppPassword(ctx, seeder, alice, "Phone", account.AppPasswordOptions{Scopes: []store.Scope{store.ScopeIMAP}})
	must(err)
	tb, err := svc.CreateAppPassword(ctx, seeder, bob, "Thunderbird", account.AppPasswordOptions{})
	must(err)
	must(db.TouchAppPassword(ctx, alice, phone.ID, store.LastUse{
		Time: time.Now().Add(-time.Minute), IP: netip.MustParseAddr("198.51.100.7"), Protocol: "imap", Client: "K-9"}))
	// First-use binding's fields travel with the password.
	k9 := store.Device{Client: "K-9 Mail", TLS: "t13i310800_e8f1e7e78f70_075226722802", Network: netip.MustParsePrefix("198.51.100.0/24")}
	_, err = db.UpdateAppPassword(ctx, alice, phone.ID, func(p *store.AppPassword) error {
		p.Bound = &store.DeviceBinding{Device: k9, Protocol: "imap", Time: time.Now().Add(-time.Hour).UTC()}
		p.AddDrift(store.DriftEvent{Time: time.Now().UTC(), Protocol: "imap", IP: here0,
			Device: store.Device{TLS: "t13d1313ip_f57a46bbacb6_9c9c7ee8ce66"}, Refused: true})
		p.DevicePolicy = store.DevicePolicyBlock
		return nil
	})
	must(err)
	for i, u := range []string{alice, alice, bob, alice, bob} {
		must(db.AppendAudit(ctx, store.AuditRecord{Time: time.Now().Add(time.Duration(i) * time.Second),
			Protocol: "imap", Username: u, Result: "ok", SessionID: fmt.Sprintf("s%d", i)}))
	}
	here, inOffice := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.0.2.10")
	src.logins = []login{
		{alice, outlook.Password, store.ScopeSMTP, inOffice, authn.OK, outlook.ID},
		{alice, outlook.Password, store.ScopeIMAP, here, authn.AddressDenied, outlook.ID},
		{alice, phone.Password, store.ScopeIMAP, here, authn.OK, phone.ID},
		{alice, phone.Password, store.ScopeSMTP, here, authn.ScopeDenied, phone.ID},
		{alice, "alice primary pw", store.ScopeIMAP, here, authn.PrimaryRefusedMFA, ""},
		{bob, strings.ToUpper(tb.Password), store.ScopeIMAP, here, authn.OK, tb.ID},
		{bob, "bob primary pw", store.ScopeIMAP, here, authn.OK, ""},
		{bob, "not bob's password", store.ScopeIMAP, here, authn.BadSecret, ""},
	}
	return src
}

// open opens the source file; it is closed when the test ends.
func (s *boltSource) open(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(s.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// snapshot is everything migrate copies, as JSON, for comparisons.
func snapshot(t *testing.T, st migrate.Source) string {
	t.Helper()
	ctx := t.Context()
	type account struct {
		Account      store.Account
		AppPasswords []store.AppPassword
		Audit        []store.AuditRecord
	}
	var all []account
	accounts, err := st.ListAccounts(ctx)
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	for _, a := range accounts {
		pws, err := st.ListAppPasswords(ctx, a.Username)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.RecentAudit(ctx, a.Username, store.AuditKeep)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			recs = nil // bolt says nil, Redis an empty list
		}
		all = append(all, account{a, pws, recs})
	}
	key, err := st.LookupKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(struct {
		Key      []byte
		Accounts []account
	}{key, all}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkLogins decides every login of src against st: each must get its
// result with exactly one argon2id evaluation.
func checkLogins(t *testing.T, st store.Store, logins []login) {
	t.Helper()
	v := &authn.Verifier{Store: st, Params: cheapArgon}
	for _, l := range logins {
		before := v.HashEvaluations()
		d, err := v.Verify(t.Context(), authn.Attempt{Username: l.user, Secret: l.secret, Protocol: l.proto, RemoteIP: l.from})
		if err != nil {
			t.Fatalf("Verify(%s, %s from %s): %v", l.user, l.proto, l.from, err)
		}
		if d.Result != l.want || d.AppPasswordID != l.wantID {
			t.Errorf("Verify(%s, %s from %s) = %s (app password %q), want %s (%q)",
				l.user, l.proto, l.from, d.Result, d.AppPasswordID, l.want, l.wantID)
		}
		if n := v.HashEvaluations() - before; n != 1 {
			t.Errorf("Verify(%s, %s) ran %d argon2id evaluations, want 1", l.user, l.proto, n)
		}
	}
}

// wantLines fails unless out has every line of want (after trimming).
func wantLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s: no line %q in:\n%s", what, w, out)
		}
	}
}

// openRedisStore opens a Store at url for the checks; closed at the end.
func openRedisStore(t *testing.T, url, prefix string) *redis.Store {
	t.Helper()
	st, err := redis.Open(t.Context(), redis.Options{URL: url, KeyPrefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testMigrateTwice migrates src to the Redis at url twice and checks that
// the first run copies everything, the second changes nothing, and every
// login decides as it did on bolt. dump, if not nil, returns the whole
// Redis content (to catch writes the store API would not show).
func testMigrateTwice(t *testing.T, src *boltSource, url string, dump func() string) {
	out := mustCLI(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", url)
	wantLines(t, "first run", out,
		"lookup key adopted the source's (app-password tags depend on it)",
		"accounts 3 created, 0 updated, 0 unchanged",
		"app passwords 3 created, 0 already there",
		"audit records 5 copied into 2 accounts, 0 accounts skipped (they already had records)")

	dst := openRedisStore(t, url, redis.DefaultKeyPrefix)
	db := src.open(t)
	want := snapshot(t, db)
	db.Close()
	if got := snapshot(t, dst); got != want {
		t.Fatalf("Redis after migrate:\n%s\nwant (bolt):\n%s", got, want)
	}

	var before string
	if dump != nil {
		before = dump()
	}
	out = mustCLI(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", url, "--json")
	var c migrate.Counts
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	var wantC migrate.Counts
	wantC.LookupKey = migrate.KeyAdopted
	wantC.Accounts.Unchanged, wantC.AppPasswords.Present, wantC.Audit.Skipped = 3, 3, 2
	if !reflect.DeepEqual(c, wantC) {
		t.Errorf("second run counts %+v, want %+v", c, wantC)
	}
	if got := snapshot(t, dst); got != want {
		t.Fatalf("the second run changed Redis:\n%s\nwant:\n%s", got, want)
	}
	if dump != nil && dump() != before {
		t.Fatalf("the second run changed Redis keys:\n%s\nwant:\n%s", dump(), before)
	}
	checkLogins(t, dst, src.logins)
}

func TestMigrateBoltToMiniredis(t *testing.T) {
	src := newBoltSource(t)
	mr := miniredis.RunT(t)
	url := "redis://" + mr.Addr()
	testMigrateTwice(t, src, url, mr.Dump)

	// Changes in the source since the last run: the next one brings them.
	db := src.open(t)
	if err := db.UpdateAccount(t.Context(), "bob@example.org", func(a *store.Account) error {
		a.Disabled = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := seedService(db).CreateAppPassword(t.Context(), seeder, "carol@example.org", "Laptop", account.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	out := mustCLI(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", url, "--audit=false")
	wantLines(t, "after changes", out,
		"accounts 0 created, 1 updated, 2 unchanged",
		"app passwords 1 created, 3 already there",
		"audit records not copied (--audit=false)")
	checkLogins(t, openRedisStore(t, url, redis.DefaultKeyPrefix), []login{
		{"carol@example.org", p.Password, store.ScopeIMAP, netip.MustParseAddr("203.0.113.9"), authn.OK, p.ID},
		{"bob@example.org", "bob primary pw", store.ScopeIMAP, netip.MustParseAddr("203.0.113.9"), authn.Disabled, ""},
	})
}

func TestMigrateBoltToRedisServer(t *testing.T) {
	src := newBoltSource(t)
	testMigrateTwice(t, src, testredis.Start(t).URL(), nil)
}

// TestMigrateLookupKeyConflict migrates into a Redis that another
// installation uses: with app passwords there, migrate must refuse before
// copying anything; without, the destination adopts the source's key.
func TestMigrateLookupKeyConflict(t *testing.T) {
	src := newBoltSource(t)
	for _, withAppPassword := range []bool{true, false} {
		t.Run(fmt.Sprintf("AppPasswords=%v", withAppPassword), func(t *testing.T) {
			mr := miniredis.RunT(t)
			url := "redis://" + mr.Addr()
			other := openRedisStore(t, url, redis.DefaultKeyPrefix)
			svc := seedService(other)
			if err := svc.CreateUser(t.Context(), seeder, account.NewUser{Username: "dave@example.org"}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.LookupKey(t.Context()); err != nil {
				t.Fatal(err)
			}
			if withAppPassword {
				if _, err := svc.CreateAppPassword(t.Context(), seeder, "dave@example.org", "Mail", account.AppPasswordOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			before := mr.Dump()
			out, stderr, err := cli(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", url)
			if !withAppPassword {
				if err != nil {
					t.Fatalf("migrate: %v (stderr %q)", err, stderr)
				}
				wantLines(t, "migrate", out, "accounts 3 created, 0 updated, 0 unchanged")
				checkLogins(t, openRedisStore(t, url, redis.DefaultKeyPrefix), src.logins)
				return
			}
			if err == nil || !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "another installation") ||
				!strings.Contains(err.Error(), "nothing was copied") {
				t.Fatalf("migrate over another installation: err %v, want a refusal that says why", err)
			}
			if after := mr.Dump(); after != before {
				t.Fatalf("a refused migrate changed Redis:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

// TestMigrateToConfig migrates into the store of a configuration file:
// Redis with its own key prefix, and another bolt file.
func TestMigrateToConfig(t *testing.T) {
	src := newBoltSource(t)
	t.Run("Redis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		cfg := filepath.Join(t.TempDir(), "passgate.toml")
		text := fmt.Sprintf("[imap]\nlisten = \"127.0.0.1:0\"\nallow_cleartext = true\n[imap.upstream]\naddress = \"127.0.0.1:9\"\n"+
			"login = \"master\"\nmaster_user = \"proxy\"\nmaster_secret = \"master-secret-value\"\n"+
			"[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"redis://%s\"\nkey_prefix = \"pg2\"\n", mr.Addr())
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out := mustCLI(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", "config", "--config", cfg)
		wantLines(t, "migrate", out, "accounts 3 created, 0 updated, 0 unchanged")
		for _, k := range mr.Keys() {
			if !strings.HasPrefix(k, "pg2:") {
				t.Errorf("key %q outside the configured prefix", k)
			}
		}
		checkLogins(t, openRedisStore(t, "redis://"+mr.Addr(), "pg2"), src.logins)
	})
	t.Run("Bolt", func(t *testing.T) {
		cfg := testConfig(t)
		mustCLI(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", "config", "--config", cfg, "--audit=false")
		db, err := bolt.Open(filepath.Join(filepath.Dir(cfg), "passgate.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		checkLogins(t, db, src.logins)
	})
	t.Run("SameFile", func(t *testing.T) {
		cfg := testConfig(t)
		dbPath := filepath.Join(filepath.Dir(cfg), "passgate.db")
		mustCLI(t, "", "user", "add", "x@example.org", "--config", cfg)
		_, _, err := cli(t, "", "store", "migrate", "--from", "bolt:"+dbPath, "--to", "config", "--config", cfg)
		if err == nil || !strings.Contains(err.Error(), "source file") {
			t.Fatalf("migrating a file onto itself: %v", err)
		}
	})
}

func TestMigrateCommandErrors(t *testing.T) {
	src := newBoltSource(t)
	missing := filepath.Join(t.TempDir(), "missing.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoFlags", nil, "want --from"},
		{"NoTo", []string{"--from", "bolt:" + src.path}, "want --from"},
		{"NotBolt", []string{"--from", src.path, "--to", "redis://127.0.0.1:1"}, "bolt:PATH"},
		{"NotRedis", []string{"--from", "bolt:" + src.path, "--to", "http://127.0.0.1:1"}, "redis://"},
		{"MissingSource", []string{"--from", "bolt:" + missing, "--to", "redis://127.0.0.1:1"}, missing},
		{"PrefixWithConfig", []string{"--from", "bolt:" + src.path, "--to", "config", "--key-prefix", "x"}, "key_prefix"},
		{"Positional", []string{"extra", "--from", "bolt:" + src.path, "--to", "config"}, "unexpected argument"},
		{"RedisDown", []string{"--from", "bolt:" + src.path, "--to", "redis://u:Secr3tPw@" + testtool.ClosedAddr(t)}, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cli(t, "", append([]string{"store", "migrate"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one that mentions %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Secr3tPw") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing source was created: %v", err)
	}
}

func TestMigrateSourceInUse(t *testing.T) {
	src := newBoltSource(t)
	src.open(t) // as a running passgate serve would
	_, _, err := cli(t, "", "store", "migrate", "--from", "bolt:"+src.path, "--to", "redis://"+miniredis.RunT(t).Addr())
	if err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("migrate from a file in use: %v", err)
	}
}

// The backends a migration reads from and writes to.
var (
	_ migrate.Source = (*bolt.DB)(nil)
	_ migrate.Dest   = (*bolt.DB)(nil)
	_ migrate.Dest   = (*redis.Store)(nil)
)

// seeder makes the accounts that migration tests start from.
var seeder = account.Actor{Door: account.DoorCLI, Name: "test"}

// unaudited keeps no audit records, so that the records a migration test
// counts are only those it writes itself.
type unaudited struct{ account.Store }

func (unaudited) AppendAudit(context.Context, store.AuditRecord) error { return nil }

// seedService is an account service on st with cheap hashes and no audit.
func seedService(st account.Store) *account.Service {
	return &account.Service{Store: unaudited{st}, Verifier: &authn.Verifier{Store: st, Params: cheapArgon},
		Logger: slog.New(slog.DiscardHandler)}
}
