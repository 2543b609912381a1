package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/redis"
	"github.com/passgate/passgate/store/storetest"
)

func TestMain(m *testing.M) {
	redis.SetLibraryLogger(quiet)
	testleak.VerifyTestMain(m)
}

// quiet discards go-redis's own messages (failed dials while a test's
// server is down, Sentinel switches).
var quiet = slog.New(slog.DiscardHandler)

// prefixes makes every store of a shared server start empty.
var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

// testTimeout is the Store's per-read deadline in tests that do not test
// that deadline. The default (redis.DefaultTimeout, 1 s) is sized for a
// production Redis; miniredis runs each EVAL in a fresh Lua state, and on a
// loaded CI machine the 270 scripts of one audit batch took more than 1 s
// ("AppendAuditBatch: ... i/o timeout", 12 of 30 runs under load).
const testTimeout = 30 * time.Second

// open opens a Store that is closed when the test ends. A nil Logger logs
// to the test's output; a zero Timeout is testTimeout.
func open(t testing.TB, opts redis.Options) *redis.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	s, err := redis.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// opener makes a storetest.Opener from a function returning the options of
// a new, empty store; Reopen opens the same options again.
func opener(newOpts func(t *testing.T) redis.Options) storetest.Opener {
	var mu sync.Mutex
	opts := map[store.Store]redis.Options{}
	remember := func(s *redis.Store, o redis.Options) *redis.Store {
		mu.Lock()
		defer mu.Unlock()
		opts[s] = o
		return s
	}
	return storetest.Opener{
		New: func(t *testing.T) store.Store {
			o := newOpts(t)
			return remember(open(t, o), o)
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			mu.Lock()
			o := opts[s]
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return remember(open(t, o), o)
		},
	}
}

// conformance runs every conformance suite the Store implements. newOpts
// returns the options of a new, empty store; advance moves the server's
// clock (nil for a real server).
func conformance(t *testing.T, newOpts func(t *testing.T) redis.Options, advance func(time.Duration)) {
	t.Run("Store", func(t *testing.T) { storetest.Run(t, opener(newOpts)) })
	t.Run("Counters", func(t *testing.T) {
		storetest.RunCounters(t, func(t *testing.T) store.Counters { return open(t, newOpts(t)) }, advance)
	})
	t.Run("AuditLog", func(t *testing.T) {
		storetest.RunAuditLog(t, func(t *testing.T) storetest.AuditStore { return open(t, newOpts(t)) })
	})
	t.Run("KV", func(t *testing.T) {
		storetest.RunKV(t, func(t *testing.T) store.KV { return open(t, newOpts(t)) }, advance)
	})
}

func TestConformanceMiniredis(t *testing.T) {
	t.Run("Store", func(t *testing.T) {
		// One miniredis per store: a fresh server each time.
		storetest.Run(t, opener(func(t *testing.T) redis.Options {
			return redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}}
		}))
	})
	// One shared miniredis, whose clock advance moves.
	mr := miniredis.RunT(t)
	conformance(t, func(*testing.T) redis.Options {
		return redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: uniquePrefix()}
	}, mr.FastForward)
}

func TestConformanceServer(t *testing.T) {
	srv := testredis.Start(t)
	conformance(t, func(*testing.T) redis.Options {
		return redis.Options{URL: "redis://" + srv.Addr() + "/0", KeyPrefix: uniquePrefix()}
	}, nil)
}

func TestConformanceCluster(t *testing.T) {
	addrs := testredis.StartCluster(t, 3)
	conformance(t, func(*testing.T) redis.Options {
		return redis.Options{Addrs: addrs, KeyPrefix: uniquePrefix()}
	}, nil)
}

// wantUnavailable fails unless err wraps store.ErrUnavailable.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("%s: error %v, want ErrUnavailable", what, err)
	}
}

// eventually calls fn until it succeeds, failing the test after 10 s.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 10s: %v", what, err)
		}
		<-tick.C
	}
}

// receive returns the next event on ch, failing after 10 s.
func receive(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-timer.C:
		t.Fatal("no event within 10s")
	}
	panic("unreachable")
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// rawClient is a plain go-redis client for looking behind the Store.
func rawClient(t testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func appPass(username, id string) store.AppPassword {
	return store.AppPassword{
		ID: id, Username: username, Name: "client " + id, Verifier: "v",
		Tag: []byte("tag of " + id), Scopes: store.AllScopes, Created: time.Now().UTC(),
	}
}

// setup creates alice with app passwords of the given IDs.
func setup(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	if err := s.CreateAccount(t.Context(), store.Account{Username: "alice", Created: time.Now()}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	for _, id := range ids {
		if err := s.CreateAppPassword(t.Context(), appPass("alice", id)); err != nil {
			t.Fatalf("CreateAppPassword(%q): %v", id, err)
		}
	}
}

// verifyPath is what a login does: find the app password, record its use.
func verifyPath(ctx context.Context, s store.Store, id string) error {
	p, err := s.FindAppPassword(ctx, "alice", []byte("tag of "+id))
	if err != nil {
		return err
	}
	return s.TouchAppPassword(ctx, "alice", p.ID, store.LastUse{Time: time.Now(), Protocol: "imap"})
}

// TestRedisDown stops redis-server: every call fails with ErrUnavailable
// (long before the caller's own deadline); when it comes back on the same
// port the same Store works again, and a subscription made before the
// outage reconnects, reports the lost events (store.EventsLost on its
// channel) and delivers new ones.
func TestRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	s := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	setup(t, s, "a", "b")
	events, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	calls := []struct {
		name string
		fn   func() error
	}{
		{"GetAccount", func() error { _, err := s.GetAccount(ctx, "alice"); return err }},
		{"FindAppPassword+TouchAppPassword", func() error { return verifyPath(ctx, s, "a") }},
		{"CreateAccount", func() error { return s.CreateAccount(ctx, store.Account{Username: "bob"}) }},
		{"RevokeAppPassword", func() error { return s.RevokeAppPassword(ctx, "alice", "a") }},
		{"Incr", func() error { _, err := s.Incr(ctx, "k", 1, time.Minute); return err }},
		{"Subscribe", func() error { _, err := s.Subscribe(ctx); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.fn()
		t.Logf("%s with redis-server stopped: %v after %v", c.name, err, time.Since(start).Round(time.Millisecond))
		wantUnavailable(t, c.name, err)
	}

	srv.Restart() // empty: no persistence
	eventually(t, "CreateAccount after restart", func() error {
		return s.CreateAccount(t.Context(), store.Account{Username: "alice"})
	})
	if err := s.CreateAppPassword(t.Context(), appPass("alice", "c")); err != nil {
		t.Fatalf("CreateAppPassword after restart: %v", err)
	}
	if err := verifyPath(t.Context(), s, "c"); err != nil {
		t.Fatalf("verify path after restart: %v", err)
	}
	if ev := receive(t, events); ev.Kind != store.EventsLost {
		t.Fatalf("first event after the restart: %+v, want EventsLost", ev)
	}
	if err := s.RevokeAppPassword(t.Context(), "alice", "c"); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, events); ev.AppPasswordID != "c" {
		t.Fatalf("event %+v after restart, want the revocation of c", ev)
	}
}

// TestRedisHung pauses redis-server (SIGSTOP): connections are accepted
// but nothing answers. Calls must still end with ErrUnavailable, by the
// Store's own deadline, and work again when the server resumes.
func TestRedisHung(t *testing.T) {
	srv := testredis.Start(t)
	// The Store's own deadline is what this test is about: the default.
	s := open(t, redis.Options{Addrs: []string{srv.Addr()}, Timeout: redis.DefaultTimeout})
	setup(t, s, "a")
	srv.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		fn   func() error
	}{
		{"GetAccount", func() error { _, err := s.GetAccount(ctx, "alice"); return err }},
		{"FindAppPassword+TouchAppPassword", func() error { return verifyPath(ctx, s, "a") }},
		{"Get counter", func() error { _, err := s.Get(ctx, "k"); return err }},
	} {
		start := time.Now()
		err := c.fn()
		t.Logf("%s with redis-server paused: %v after %v", c.name, err, time.Since(start).Round(time.Millisecond))
		// ErrUnavailable, not the caller's deadline: the Store gave up.
		wantUnavailable(t, c.name, err)
	}
	srv.Resume()
	eventually(t, "verify path after resume", func() error { return verifyPath(t.Context(), s, "a") })
}

// TestEventsAcrossInstances: two Stores on one server are two passgate
// instances; a change made through one reaches a subscriber of the other,
// and a store with another key prefix hears nothing.
func TestEventsAcrossInstances(t *testing.T) {
	srv := testredis.Start(t)
	a := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	b := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	other := open(t, redis.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "other"})
	onB, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	onOther, err := other.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	setup(t, a, "p1", "p2", "p3")
	if p, err := b.FindAppPassword(t.Context(), "alice", []byte("tag of p1")); err != nil || p.ID != "p1" {
		t.Fatalf("B finds A's app password: %+v, %v", p, err)
	}

	if err := a.RevokeAppPassword(t.Context(), "alice", "p1"); err != nil {
		t.Fatal(err)
	}
	want := store.Event{Kind: store.EventAppPasswordRevoked, Username: "alice", AppPasswordID: "p1"}
	if ev := receive(t, onB); ev != want {
		t.Fatalf("B got %+v, want %+v", ev, want)
	}
	if _, err := b.FindAppPassword(t.Context(), "alice", []byte("tag of p1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("B finds the revoked password: %v", err)
	}

	if err := a.UpdateAccount(t.Context(), "alice", func(acc *store.Account) error { acc.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want = store.Event{Kind: store.EventAccountChanged, Username: "alice"}
	if ev := receive(t, onB); ev != want {
		t.Fatalf("B got %+v, want %+v", ev, want)
	}

	if n, err := a.RevokeAllAppPasswords(t.Context(), []string{"alice"}); err != nil || n != 2 {
		t.Fatalf("RevokeAllAppPasswords = %d, %v", n, err)
	}
	got := map[string]bool{}
	for range 2 {
		ev := receive(t, onB)
		got[ev.AppPasswordID] = ev.Kind == store.EventAppPasswordRevoked && ev.Username == "alice"
	}
	if !got["p2"] || !got["p3"] {
		t.Fatalf("B got revocations %v, want p2 and p3", got)
	}

	// The other prefix's first event is its own.
	setup(t, other, "x")
	if err := other.RevokeAppPassword(t.Context(), "alice", "x"); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, onOther); ev.AppPasswordID != "x" {
		t.Fatalf("store with another prefix got %+v", ev)
	}
}
