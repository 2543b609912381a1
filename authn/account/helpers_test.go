package account

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	carol = "carol@example.com"
	dave  = "dave@example.com"
)

var (
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cheap = authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}
	root  = Actor{Door: DoorCLI, Name: "root"}
)

// collidingStore fails the next failN CreateAppPassword calls with fail
// (negative: all) and counts the calls.
type collidingStore struct {
	*bolt.DB
	fail         error
	failN, calls int
}

func (c *collidingStore) CreateAppPassword(ctx context.Context, p store.AppPassword) error {
	c.calls++
	if c.fail != nil && c.failN != 0 {
		c.failN--
		return c.fail
	}
	return c.DB.CreateAppPassword(ctx, p)
}

// fixture is a Service over a bolt store with a fixed clock, an audit
// stream and a log.
type fixture struct {
	svc   *Service
	st    *collidingStore
	v     *authn.Verifier
	audit *testlog.Buffer // the JSON audit stream
	log   *testlog.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{st: &collidingStore{DB: db}, audit: new(testlog.Buffer)}
	var log *slog.Logger
	log, f.log = testlog.New(slog.LevelInfo)
	f.v = &authn.Verifier{Store: f.st, Params: cheap, Now: func() time.Time { return t0 }, Logger: log}
	f.svc = &Service{Store: f.st, Verifier: f.v, AuditLog: slog.New(slog.NewJSONHandler(f.audit, nil)),
		Logger: log, Now: func() time.Time { return t0 }}
	return f
}

func (f *fixture) user(t *testing.T, name, password string, mfa bool) {
	t.Helper()
	if err := f.svc.CreateUser(context.Background(), root, NewUser{Username: name, Password: password, MFA: mfa}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) appPassword(t *testing.T, user, name string) NewAppPassword {
	t.Helper()
	np, err := f.svc.CreateAppPassword(context.Background(), root, user, name, AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return np
}

func (f *fixture) account(t *testing.T, user string) store.Account {
	t.Helper()
	a, err := f.st.GetAccount(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// enrol gives user an enrolled authenticator, as the portal's enrolment
// stores it (the account service offers none: the portal enrols), so that
// there is one to reset.
func (f *fixture) enrol(t *testing.T, user string) {
	t.Helper()
	err := f.st.UpdateAccount(context.Background(), user, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: []byte("sealed secret"), Enrolled: t0,
			Recovery: []store.RecoveryCode{{Tag: []byte("tag"), Hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"}}}
		a.MFA = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stored returns the stored app password id of user.
func (f *fixture) stored(t *testing.T, user, id string) store.AppPassword {
	t.Helper()
	list, err := f.st.ListAppPasswords(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("app password %s of %s not stored", id, user)
	return store.AppPassword{}
}

// login runs one IMAP login decision.
func (f *fixture) login(t *testing.T, user, secret string) authn.Result {
	t.Helper()
	d, err := f.v.Verify(context.Background(), authn.Attempt{Username: user, Secret: secret, Protocol: store.ScopeIMAP})
	if err != nil {
		t.Fatal(err)
	}
	return d.Result
}

// records returns user's audit records in the store, oldest first.
func (f *fixture) records(t *testing.T, user string) []store.AuditRecord {
	t.Helper()
	recs, err := f.st.RecentAudit(context.Background(), user, store.AuditKeep)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// streamed returns the records of the audit stream.
func (f *fixture) streamed(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(f.audit.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("audit stream line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
