package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	accountsvc "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/redis"
)

// Issue 10 §1: a revocation ends every session, even when its events are
// lost. 100 users × 5 app passwords, one session each (500), plus a
// bystander's session, through the in-process passgate (inproc_test.go).
const (
	bulkUsers   = 100
	bulkPerUser = 5
)

// storeUnderTest opens a fresh store: bolt in a temp dir, or a real
// redis-server of its own. Its warnings go to the returned log.
type storeUnderTest struct {
	name string
	open func(t *testing.T, log *slog.Logger) accountsvc.Store
}

var storesUnderTest = []storeUnderTest{
	{"bolt", func(t *testing.T, log *slog.Logger) accountsvc.Store {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{"redis", func(t *testing.T, log *slog.Logger) accountsvc.Store {
		return openRedisStore(t, testredis.Start(t).URL(), log)
	}},
}

func openRedisStore(t testing.TB, url string, log *slog.Logger) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	st, err := redis.Open(ctx, redis.Options{URL: url, Logger: log})
	if err != nil {
		t.Fatalf("open redis store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRevokeAllEndsEverySession: a revoke-all of 100 users ends all 500 of
// their sessions, and not the bystander's.
func TestRevokeAllEndsEverySession(t *testing.T) {
	for _, sut := range storesUnderTest {
		t.Run(sut.name, func(t *testing.T) {
			log, _ := testlog.New(slog.LevelWarn)
			st := sut.open(t, log)
			p := startInProc(t, st, inProcOpts{})
			names, live, bystander := bulkSessions(t, p, bulkUsers, bulkPerUser)

			start := time.Now()
			n, err := st.RevokeAllAppPasswords(context.Background(), names)
			if err != nil || n != len(live) {
				t.Fatalf("RevokeAllAppPasswords = %d, %v; want %d", n, err, len(live))
			}
			last := lastClosed(t, live)
			t.Logf("%s: revoke-all of %d users: %d sessions, the last closed %v after the revoke started",
				sut.name, len(names), len(live), last.Sub(start).Round(time.Millisecond))
			bystander.stillOpen(t)
			if left := p.reg.Sessions(); len(left) != 1 {
				t.Errorf("%d sessions registered, want the bystander's only", len(left))
			}
		})
	}
}

// TestReconcileLostEvents: the registry's event reader is held while the
// revoke-all publishes its 500 events, so the store's 256-slot buffer
// overflows and drops events on purpose. The store says so
// (store.EventsLost), the registry reconciles, and every session ends
// anyway, with the recheck timer out of play.
func TestReconcileLostEvents(t *testing.T) {
	for _, sut := range storesUnderTest {
		t.Run(sut.name, func(t *testing.T) {
			log, logs := testlog.New(slog.LevelWarn)
			st := sut.open(t, log)
			cache := newStallingCache()
			p := startInProc(t, st, inProcOpts{Cache: cache})
			names, live, bystander := bulkSessions(t, p, bulkUsers, bulkPerUser)
			p.account(t, "staller@example.org")
			stall := p.appPassword(t, "staller@example.org", "stall", time.Time{})

			ctx := context.Background()
			if err := st.RevokeAppPassword(ctx, "staller@example.org", stall.ID); err != nil {
				t.Fatal(err)
			}
			<-cache.stalled
			start := time.Now()
			n, err := st.RevokeAllAppPasswords(ctx, names)
			if err != nil || n != len(live) {
				t.Fatalf("RevokeAllAppPasswords = %d, %v; want %d", n, err, len(live))
			}
			waitLogged(t, logs, "dropped: subscriber buffer full")
			close(cache.release)
			last := lastClosed(t, live)
			drops, cleared := cache.counts()
			delivered := drops - 1 // the staller's event
			t.Logf("%s: %d of %d events delivered, the rest lost; all %d sessions closed, the last %v after the revoke started",
				sut.name, delivered, n, len(live), last.Sub(start).Round(time.Millisecond))
			if delivered >= n {
				t.Errorf("all %d events were delivered: none was lost", n)
			}
			if cleared == 0 {
				t.Error("the login cache was not cleared after events were lost")
			}
			bystander.stillOpen(t)
		})
	}
}

// waitLogged waits until the log holds text.
func waitLogged(t testing.TB, logs *testlog.Buffer, text string) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !strings.Contains(logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %v:\n%s", text, ioTimeout, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReconcileRedisKilled: passgate reaches Redis through a relay that
// is cut (a partition) just before another instance's revoke-all, so the
// events never reach it; then redis-server crashes (SIGKILL, after a
// SAVE: a persistent Redis) and comes back. Every revoked session must end
// within the recheck interval of the restart: passgate hears that events
// were lost when it subscribes again, and would reconcile on its timer
// anyway.
func TestReconcileRedisKilled(t *testing.T) {
	const interval = 3 * time.Second
	r := testredis.Start(t)
	relay := startTCPRelay(t, addr(r.Port))
	log, _ := testlog.New(slog.LevelWarn)
	st := openRedisStore(t, "redis://"+relay.Addr, log)
	other := openRedisStore(t, r.URL(), log) // another instance, or the CLI
	p := startInProc(t, st, inProcOpts{RecheckInterval: interval})
	names, live, bystander := bulkSessions(t, p, bulkUsers, bulkPerUser)

	relay.cut(true)
	start := time.Now()
	n, err := other.RevokeAllAppPasswords(context.Background(), names)
	if err != nil || n != len(live) {
		t.Fatalf("RevokeAllAppPasswords = %d, %v; want %d", n, err, len(live))
	}
	if err := r.Save(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	r.Kill()
	for _, s := range live {
		select {
		case <-s.closed:
			t.Fatalf("session of %s closed before Redis came back: the test lost no event", s.user)
		default:
		}
	}
	r.Restart()
	restarted := time.Now()
	startTCPRelayAt(t, relay.Addr, addr(r.Port))
	last := lastClosed(t, live)
	t.Logf("redis killed after a revoke-all whose %d events were lost: all %d sessions closed, the last %v after the restart (%v after the revoke; recheck interval %v)",
		n, len(live), last.Sub(restarted).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond), interval)
	bystander.stillOpen(t)
}

// TestReconcileAppPasswordExpiry (issue 9 item 11): a session ends when its
// app password expires, while another one goes on.
func TestReconcileAppPasswordExpiry(t *testing.T) {
	log, _ := testlog.New(slog.LevelWarn)
	p := startInProc(t, storesUnderTest[0].open(t, log), inProcOpts{})
	const user = "expiring@example.org"
	p.account(t, user)
	expires := time.Now().Add(time.Second).Truncate(time.Millisecond)
	short := p.open(t, user, p.appPassword(t, user, "one-day pass", expires).Password)
	long := p.open(t, user, p.appPassword(t, user, "laptop", time.Time{}).Password)
	closed := short.waitClosed(t)
	t.Logf("session closed %v after its app password expired", closed.Sub(expires).Round(time.Millisecond))
	if closed.Before(expires) {
		t.Errorf("session closed %v before its app password expired", expires.Sub(closed))
	}
	long.stillOpen(t)
	fmt.Fprint(long.conn, "z LOGOUT\r\n")
}

// TestReconcileRedisKilledBinary is TestReconcileRedisKilled through the
// real binary against Dovecot: sessions in IDLE, a partition from Redis
// while another instance revokes, Redis killed and restarted. The
// revoked sessions close, the bystander's does not.
func TestReconcileRedisKilledBinary(t *testing.T) {
	const interval = "2s"
	d := sharedDovecot(t)
	r := testredis.Start(t)
	relay := startTCPRelay(t, addr(r.Port))
	pg := newPassgate(t, d, passgateOpts{})
	useRedisURL(t, pg, "redis://"+relay.Addr)
	appendConfig(t, pg, "[sessions]", "recheck_interval = "+quote(interval))
	pg.serve(t)
	other := newPassgate(t, d, passgateOpts{}) // its CLI writes to Redis directly
	useRedis(t, other, r)

	a, b, c := newAccount(t, d, pg, true), newAccount(t, d, pg, true), newAccount(t, d, pg, true)
	a2 := pg.createAppPassword(t, a.User, "second device")
	revoked := []*idler{
		idling(t, pg, a.User, a.AppPass),
		idling(t, pg, a.User, a2.Password),
		idling(t, pg, b.User, b.AppPass),
	}
	bystander := idling(t, pg, c.User, c.AppPass)

	relay.cut(true)
	start := time.Now()
	other.run(t, "apppass", "revoke-all", a.User, b.User)
	if err := r.Save(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	r.Kill()
	for _, s := range revoked {
		select {
		case <-s.closedAt:
			t.Fatal("a session closed before Redis came back: the test lost no event")
		default:
		}
	}
	r.Restart()
	restarted := time.Now()
	startTCPRelayAt(t, relay.Addr, addr(r.Port))
	for n, s := range revoked {
		closed := s.waitClosed(t)
		t.Logf("session %d closed %v after the restart (%v after the revoke-all; recheck interval %s)",
			n+1, closed.Sub(restarted).Round(time.Millisecond), closed.Sub(start).Round(time.Millisecond), interval)
	}
	bystander.stillOpen(t, "another user's session")
}

// appendConfig adds lines at the end of pg's configuration (serve not
// started yet).
func appendConfig(t testing.TB, pg *Passgate, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(pg.ConfFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "\n%s\n", strings.Join(lines, "\n")); err != nil {
		t.Fatal(err)
	}
}
