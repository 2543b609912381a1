package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// TestAddChecksTheStore: a session whose credential changed between the
// login decision and its registration (a revocation during the upstream
// login) is refused, whether or not its event was seen.
func TestAddChecksTheStore(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.account(t, "alice", "alice primary")
	r := &Registry{Store: w.db}
	add := func(d authn.Decision) error {
		_, err := r.Add(ctx, Session{ID: "new", Protocol: store.ScopeIMAP, Remote: client, Login: d},
			func() { t.Error("end called for a refused session") })
		return err
	}

	p := w.appPassword(t, "alice", time.Time{})
	d := w.login(t, "alice", p.Password)
	if err := w.db.RevokeAppPassword(ctx, "alice", p.ID); err != nil {
		t.Fatal(err)
	}
	if err := add(d); !errors.Is(err, ErrRevoked) {
		t.Errorf("Add after the revocation: %v, want ErrRevoked", err)
	}

	primary := w.login(t, "alice", "alice primary")
	if err := w.db.UpdateAccount(ctx, "alice", func(a *store.Account) error { a.MFA = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := add(primary); !errors.Is(err, ErrRevoked) {
		t.Errorf("Add of a primary login after MFA was turned on: %v, want ErrRevoked", err)
	}
	if n := len(r.Sessions()); n != 0 {
		t.Fatalf("%d sessions registered, want none", n)
	}

	valid := w.login(t, "alice", w.appPassword(t, "alice", time.Time{}).Password)
	l := open(t, r, valid)
	if got := r.Sessions(); len(got) != 1 || got[0].ID != l.s.ID {
		t.Fatalf("Sessions = %+v, want the valid one", got)
	}

	// A store that cannot answer refuses the login (a temporary failure),
	// rather than let it through unchecked.
	w.db.Close()
	if err := add(valid); err == nil || errors.Is(err, ErrRevoked) {
		t.Errorf("Add with the store closed: %v, want the store's error", err)
	}
	if n := len(r.Sessions()); n != 1 {
		t.Errorf("%d sessions registered, want the one from before", n)
	}
}

// TestExpiry: a session ends when its app password expires, by itself
// (no Watch, no store read); one removed before does not.
func TestExpiry(t *testing.T) {
	w := newWorld(t)
	w.account(t, "alice", "")
	// The creation, the logins and the registrations are decided at one
	// instant, before the expiry, however long the setup takes on a slow
	// machine (it once outlasted life: "Add: ... expired"); the session's
	// expiry timer runs on the real clock from its Add.
	created := time.Now()
	clock := func() time.Time { return created }
	w.v.Now = clock
	r := &Registry{Store: w.db, Now: clock}
	const life = 300 * time.Millisecond
	expires := created.Add(life)
	p := w.appPassword(t, "alice", expires)
	d := w.login(t, "alice", p.Password)
	if !d.Expires().Equal(expires) {
		t.Fatalf("decision expires %v, want %v", d.Expires(), expires)
	}
	gone := open(t, r, d)
	gone.remove() // at once: its timer, had it not been stopped, fires before ends's
	forever := open(t, r, w.login(t, "alice", w.appPassword(t, "alice", time.Time{}).Password))
	ends := open(t, r, d)

	at := ends.waitEnded(t)
	t.Logf("session ended %v after its app password expired", at.Sub(expires).Round(time.Millisecond))
	if at.Before(expires) {
		t.Errorf("session ended %v before the expiry", expires.Sub(at))
	}
	if got := r.Sessions(); len(got) != 1 || got[0].ID != forever.s.ID {
		t.Errorf("Sessions after the expiry = %+v, want only the one without expiry", got)
	}
	if gone.isEnded() {
		t.Error("a removed session was ended at expiry")
	}

	// A session registered after its expiry (the clock moved on during the
	// upstream login) is refused.
	r.Now = func() time.Time { return expires }
	if _, err := r.Add(context.Background(), ends.s, func() {}); !errors.Is(err, ErrRevoked) {
		t.Errorf("Add at the expiry: %v, want ErrRevoked", err)
	}
}

// TestReconcile: with no event seen at all, one Reconcile ends exactly the
// sessions the store no longer admits, and reads the store once.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		w.account(t, u, u+" primary")
	}
	counting := &countingStore{Store: w.db}
	r := &Registry{Store: counting}
	type sess struct {
		l       *live
		wantEnd bool
	}
	var all []sess
	openApp := func(user string) (account.NewAppPassword, *live) {
		p := w.appPassword(t, user, time.Time{})
		return p, open(t, r, w.login(t, user, p.Password))
	}
	revoked, l := openApp("alice")
	all = append(all, sess{l, true})
	_, l = openApp("alice")
	all = append(all, sess{l, false})
	_, l = openApp("bob")
	all = append(all, sess{l, true})
	all = append(all, sess{open(t, r, w.login(t, "bob", "bob primary")), true})
	_, l = openApp("carol")
	all = append(all, sess{l, false})
	all = append(all, sess{open(t, r, w.login(t, "carol", "carol primary")), true})
	all = append(all, sess{open(t, r, w.login(t, "dave", "dave primary")), true})

	// Changes made behind the registry's back: nothing follows the events.
	if err := w.db.RevokeAppPassword(ctx, "alice", revoked.ID); err != nil {
		t.Fatal(err)
	}
	change := func(user string, fn func(*store.Account)) {
		if err := w.db.UpdateAccount(ctx, user, func(a *store.Account) error { fn(a); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	change("bob", func(a *store.Account) { a.Disabled = true })
	change("carol", func(a *store.Account) { a.MFA = true })
	change("dave", func(a *store.Account) { a.PasswordHash = "" })

	before := counting.checks.Load()
	n, err := r.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reads := counting.checks.Load() - before; reads != 1 {
		t.Errorf("Reconcile read the store %d times, want once", reads)
	}
	want := 0
	for i, s := range all {
		if s.wantEnd {
			want++
		}
		if s.l.isEnded() != s.wantEnd {
			t.Errorf("session %d (%s %q): ended %v, want %v", i, s.l.s.Login.Username, s.l.s.Login.AppPasswordID, s.l.isEnded(), s.wantEnd)
		}
	}
	if n != want || len(r.Sessions()) != len(all)-want {
		t.Errorf("Reconcile ended %d, %d left; want %d ended", n, len(r.Sessions()), want)
	}
	if n, err := r.Reconcile(ctx); n != 0 || err != nil {
		t.Errorf("second Reconcile = %d, %v; want 0", n, err)
	}
}

// countingStore counts CheckSessions calls.
type countingStore struct {
	Store
	checks atomic.Int64
}

func (c *countingStore) CheckSessions(ctx context.Context, refs []store.SessionRef) ([]store.SessionState, error) {
	c.checks.Add(1)
	return c.Store.CheckSessions(ctx, refs)
}

// TestWatchEvents: Watch ends the sessions an event concerns at once, and
// drops the cached logins it concerns.
func TestWatchEvents(t *testing.T) {
	w := newWorld(t)
	w.account(t, "alice", "")
	cache := &recordingCache{}
	r := &Registry{Store: w.db, Cache: cache, RecheckInterval: time.Hour}
	watch(t, r)
	p := w.appPassword(t, "alice", time.Time{})
	victim := open(t, r, w.login(t, "alice", p.Password))
	other := open(t, r, w.login(t, "alice", w.appPassword(t, "alice", time.Time{}).Password))
	start := time.Now()
	if err := w.db.RevokeAppPassword(context.Background(), "alice", p.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("revoked session ended %v after the revocation", victim.waitEnded(t).Sub(start))
	if other.isEnded() {
		t.Error("the session of another app password was ended")
	}
	want := store.Event{Kind: store.EventAppPasswordRevoked, Username: "alice", AppPasswordID: p.ID}
	if got := cache.dropped(); len(got) != 1 || got[0] != want {
		t.Errorf("cache drops %+v, want %+v", got, want)
	}
}

// recordingCache records Drop and Clear.
type recordingCache struct {
	mu      sync.Mutex
	drops   []store.Event
	cleared int
}

func (c *recordingCache) Drop(ev store.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops = append(c.drops, ev)
}

func (c *recordingCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleared++
}

func (c *recordingCache) dropped() []store.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]store.Event(nil), c.drops...)
}

// stallingCache holds the event follower in its first Drop until release
// is closed: a reader that falls behind, so that the store's buffer fills.
type stallingCache struct {
	recordingCache
	once             sync.Once
	stalled, release chan struct{}
}

func (c *stallingCache) Drop(ev store.Event) {
	c.once.Do(func() {
		close(c.stalled)
		<-c.release
	})
	c.recordingCache.Drop(ev)
}

// TestWatchEventsLost is the bulk revoke of 100 users × 5 app passwords
// with 500 live sessions, while the reader is stalled: bolt's buffer drops
// events, says so, and the reconciliation that follows ends the sessions
// whose events were lost. The interval timer is out of play (an hour).
func TestWatchEventsLost(t *testing.T) {
	const users, perUser = 100, 5
	ctx := context.Background()
	w := newWorld(t)
	w.account(t, "staller", "")
	stall := w.appPassword(t, "staller", time.Time{})
	cache := &stallingCache{stalled: make(chan struct{}), release: make(chan struct{})}
	r := &Registry{Store: w.db, Cache: cache, RecheckInterval: time.Hour}
	watch(t, r)
	var names []string
	var all []*live
	for u := range users {
		name := fmt.Sprintf("user%03d", u)
		names = append(names, name)
		w.account(t, name, "")
		for range perUser {
			all = append(all, open(t, r, w.login(t, name, w.appPassword(t, name, time.Time{}).Password)))
		}
	}

	if err := w.db.RevokeAppPassword(ctx, "staller", stall.ID); err != nil {
		t.Fatal(err)
	}
	<-cache.stalled
	start := time.Now()
	n, err := w.db.RevokeAllAppPasswords(ctx, names)
	if err != nil || n != users*perUser {
		t.Fatalf("RevokeAllAppPasswords = %d, %v", n, err)
	}
	close(cache.release)
	var last time.Time
	for _, l := range all {
		if at := l.waitEnded(t); at.After(last) {
			last = at
		}
	}
	delivered := len(cache.dropped()) - 1 // the staller's event
	t.Logf("%d sessions: %d of %d events delivered; the last session ended %v after the revoke-all started",
		len(all), delivered, n, last.Sub(start).Round(time.Millisecond))
	if delivered >= n {
		t.Fatalf("all %d events were delivered: the test did not lose any", n)
	}
	cache.mu.Lock()
	cleared := cache.cleared
	cache.mu.Unlock()
	if cleared == 0 {
		t.Error("the login cache was not cleared after events were lost")
	}
	if left := r.Sessions(); len(left) != 0 {
		t.Errorf("%d sessions left", len(left))
	}
}

// deafStore never delivers an event: a loss nobody noticed.
type deafStore struct{ Store }

func (deafStore) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	ch := make(chan store.Event)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// TestWatchRecheckInterval: even when a loss goes unnoticed, a revoked
// session ends within RecheckInterval.
func TestWatchRecheckInterval(t *testing.T) {
	const interval = 200 * time.Millisecond
	w := newWorld(t)
	w.account(t, "alice", "")
	r := &Registry{Store: deafStore{w.db}, RecheckInterval: interval}
	watch(t, r)
	p := w.appPassword(t, "alice", time.Time{})
	victim := open(t, r, w.login(t, "alice", p.Password))
	start := time.Now()
	if err := w.db.RevokeAppPassword(context.Background(), "alice", p.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("with no event, the revoked session ended %v after the revocation (recheck interval %v)",
		victim.waitEnded(t).Sub(start).Round(time.Millisecond), interval)
}

// TestWatchEnds: Watch's goroutines end with its context, and when the
// store closes the subscription.
func TestWatchEnds(t *testing.T) {
	w := newWorld(t)
	r := &Registry{Store: w.db}
	ctx, cancel := context.WithCancel(context.Background())
	done, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	done, err = r.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.db.Close()
	<-done
	if _, err := (&Registry{}).Watch(context.Background()); err == nil {
		t.Error("Watch without a Store succeeded")
	}
}
