package sessions

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

func TestMain(m *testing.M) { testleak.VerifyTestMain(m) }

// waitFor bounds every wait for something that must happen, so that a bug
// fails the test instead of hanging it; it is not a performance threshold.
const waitFor = 20 * time.Second

var client = netip.MustParseAddrPort("198.51.100.7:40000")

// world is a bolt store with a cheap real Verifier: logins give the
// decisions a front-end would register.
type world struct {
	db  *bolt.DB
	v   *authn.Verifier
	seq atomic.Int64
}

func newWorld(t testing.TB) *world {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &world{db: db, v: &authn.Verifier{Store: db, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}}}
}

// testActor makes the tests' account changes.
var testActor = account.Actor{Door: account.DoorCLI, Name: "test"}

// accounts is the account service on w's store, on the Verifier's clock.
func (w *world) accounts() *account.Service {
	return &account.Service{Store: w.db, Verifier: w.v, Logger: slog.New(slog.DiscardHandler), Now: w.v.Now}
}

func (w *world) account(t testing.TB, user, primary string) {
	t.Helper()
	if err := w.accounts().CreateUser(context.Background(), testActor, account.NewUser{Username: user, Password: primary}); err != nil {
		t.Fatal(err)
	}
}

// appPassword creates an app password of user expiring at expires (zero:
// never) and returns it.
func (w *world) appPassword(t testing.TB, user string, expires time.Time) account.NewAppPassword {
	t.Helper()
	name := fmt.Sprintf("device %d", w.seq.Add(1))
	p, err := w.accounts().CreateAppPassword(context.Background(), testActor, user, name, account.AppPasswordOptions{Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// login verifies secret over IMAP and returns the OK decision.
func (w *world) login(t testing.TB, user, secret string) authn.Decision {
	t.Helper()
	d, err := w.v.Verify(context.Background(), authn.Attempt{Username: user, Secret: secret,
		Protocol: store.ScopeIMAP, RemoteIP: client.Addr()})
	if err != nil || d.Result != authn.OK {
		t.Fatalf("login as %s: %v, %v", user, d.Result, err)
	}
	return d
}

// live is a registered session and a channel closed when it is ended.
type live struct {
	s      Session
	ended  chan struct{}
	remove func()
}

func (l *live) isEnded() bool {
	select {
	case <-l.ended:
		return true
	default:
		return false
	}
}

// waitEnded waits until the session was ended and returns when.
func (l *live) waitEnded(t testing.TB) time.Time {
	t.Helper()
	select {
	case <-l.ended:
		return time.Now()
	case <-time.After(waitFor):
		t.Fatalf("session %s (%s, %q) still open after %v", l.s.ID, l.s.Login.Username, l.s.Login.AppPasswordID, waitFor)
		return time.Time{}
	}
}

// open registers a session with the decision d.
func open(t testing.TB, r *Registry, d authn.Decision) *live {
	t.Helper()
	l := &live{ended: make(chan struct{})}
	l.s = Session{ID: fmt.Sprintf("s-%s-%s-%p", d.Username, d.AppPasswordID, l), Protocol: store.ScopeIMAP,
		Remote: client, Started: time.Now(), Login: d}
	remove, err := r.Add(context.Background(), l.s, func() { close(l.ended) })
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	l.remove = remove
	return l
}

// watch runs r.Watch until the test ends and waits for it to stop.
func watch(t testing.TB, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done, err := r.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
