package redis_test

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/redis"
)

// TestKeyLayout checks the documented keys, and that a revocation or a
// rejected create leaves no stray index entry.
func TestKeyLayout(t *testing.T) {
	mr := miniredis.RunT(t)
	s := open(t, redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: "pg"})
	setup(t, s, "a", "b")
	if err := s.TouchAppPassword(t.Context(), "alice", "a", store.LastUse{Protocol: "imap"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(t.Context(), "ip:192.0.2.1", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pg:{u:alice}:account":  "string",
		"pg:{u:alice}:apppass":  "hash",
		"pg:{u:alice}:tags":     "hash",
		"pg:{u:alice}:lastused": "hash",
		"pg:accounts":           "zset",
		"pg:meta:lookupkey":     "string",
		"pg:cnt:{ip:192.0.2.1}": "string",
	}
	keys := mr.Keys()
	for k, typ := range want {
		if got := mr.Type(k); got != typ {
			t.Errorf("key %q has type %q, want %q (keys: %q)", k, got, typ, keys)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("keys %q, want those of %v", keys, want)
	}
	if ttl := mr.TTL("pg:cnt:{ip:192.0.2.1}"); ttl != time.Minute {
		t.Errorf("counter TTL %v, want 1m", ttl)
	}

	// A duplicate tag adds nothing.
	dup := appPass("alice", "c")
	dup.Tag = []byte("tag of a")
	if err := s.CreateAppPassword(t.Context(), dup); err == nil {
		t.Fatal("duplicate tag accepted")
	}
	hashLen := func(key string) int {
		fields, err := mr.HKeys(key)
		if err != nil && !strings.Contains(err.Error(), "no such key") {
			t.Fatalf("HKeys(%s): %v", key, err)
		}
		return len(fields)
	}
	if n, m := hashLen("pg:{u:alice}:apppass"), hashLen("pg:{u:alice}:tags"); n != 2 || m != 2 {
		t.Errorf("after a rejected create: %d records, %d tags; want 2 and 2", n, m)
	}
	if err := s.RevokeAppPassword(t.Context(), "alice", "a"); err != nil {
		t.Fatal(err)
	}
	if n, m, l := hashLen("pg:{u:alice}:apppass"), hashLen("pg:{u:alice}:tags"), hashLen("pg:{u:alice}:lastused"); n != 1 || m != 1 || l != 0 {
		t.Errorf("after a revoke: %d records, %d tags, %d last uses; want 1, 1, 0", n, m, l)
	}
	if _, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pg:{u:alice}:apppass", "pg:{u:alice}:tags", "pg:{u:alice}:lastused"} {
		if mr.Exists(k) {
			t.Errorf("%s exists after revoke-all", k)
		}
	}
}

// TestUsernames runs usernames with braces (hash-tag syntax), non-ASCII
// letters and JSON-special characters through creation, lookup and
// revoke-all with its events (built by a Lua script), on miniredis, a
// real server and a cluster.
func TestUsernames(t *testing.T) {
	users := []string{"a}b", "{x}", "jörg@exämple.org", "quote'and/slash", "日本@example.jp"}
	backends := map[string]func(t *testing.T) redis.Options{
		"Miniredis": func(t *testing.T) redis.Options { return redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}} },
		"Server":    func(t *testing.T) redis.Options { return redis.Options{Addrs: []string{testredis.Start(t).Addr()}} },
		"Cluster":   func(t *testing.T) redis.Options { return redis.Options{Addrs: testredis.StartCluster(t, 3)} },
	}
	for name, newOpts := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t, newOpts(t))
			events, err := s.Subscribe(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				if err := s.CreateAccount(t.Context(), store.Account{Username: u}); err != nil {
					t.Fatalf("CreateAccount(%q): %v", u, err)
				}
				p := appPass(u, "id-"+u)
				if err := s.CreateAppPassword(t.Context(), p); err != nil {
					t.Fatalf("CreateAppPassword(%q): %v", u, err)
				}
				if got, err := s.FindAppPassword(t.Context(), u, p.Tag); err != nil || got.Username != u {
					t.Fatalf("FindAppPassword(%q) = %+v, %v", u, got, err)
				}
			}
			list, err := s.ListAccounts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, a := range list {
				names = append(names, a.Username)
			}
			if want := slices.Sorted(slices.Values(users)); !slices.Equal(names, want) {
				t.Fatalf("ListAccounts = %q, want %q", names, want)
			}
			n, err := s.RevokeAllAppPasswords(t.Context(), users)
			if err != nil || n != len(users) {
				t.Fatalf("RevokeAllAppPasswords = %d, %v", n, err)
			}
			got := map[store.Event]bool{}
			for range users {
				got[receive(t, events)] = true
			}
			for _, u := range users {
				want := store.Event{Kind: store.EventAppPasswordRevoked, Username: u, AppPasswordID: "id-" + u}
				if !got[want] {
					t.Errorf("no event %+v in %v", want, got)
				}
			}
		})
	}
}

// TestUpdateAccountRetries updates one account from several goroutines
// (several instances in production): WATCH detects the conflicts, fn runs
// again, and no update is lost.
func TestUpdateAccountRetries(t *testing.T) {
	srv := testredis.Start(t)
	a := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	b := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	setup(t, a)
	const workers, updates = 4, 10
	var calls atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range updates {
				err := s.UpdateAccount(t.Context(), "alice", func(acc *store.Account) error {
					calls.Add(1)
					acc.PasswordHash += "x"
					return nil
				})
				if err != nil {
					t.Errorf("UpdateAccount: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	acc, err := a.GetAccount(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(acc.PasswordHash); got != workers*updates {
		t.Fatalf("%d updates stored, want %d: updates were lost", got, workers*updates)
	}
	t.Logf("%d updates took %d calls of fn", workers*updates, calls.Load())
}

// TestSlowSubscriber: a subscriber that does not read keeps EventBuffer - 1
// events and then store.EventsLost; later ones are dropped with a warning,
// and writers never wait.
func TestSlowSubscriber(t *testing.T) {
	log, logs := testlog.New(slog.LevelInfo)
	s := open(t, redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}, Logger: log})
	setup(t, s)
	const extra = 4
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range redis.EventBuffer + extra {
		err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error {
			a.PasswordHash = strings.Repeat("x", i+1)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateAccount %d: %v", i, err)
		}
	}
	eventually(t, "drop warnings", func() error {
		if n := strings.Count(logs.String(), "dropped: subscriber buffer full"); n != extra+1 {
			return errorf("%d drop warnings, want %d", n, extra+1)
		}
		return nil
	})
	if n := len(ch); n != redis.EventBuffer {
		t.Fatalf("%d events buffered, want %d", n, redis.EventBuffer)
	}
	if strings.Contains(logs.String(), "xxx") {
		t.Error("log contains a password hash")
	}
	// The last slot holds the news that events were lost, after every
	// event that was kept.
	for i := range redis.EventBuffer {
		ev := <-ch
		if last := i == redis.EventBuffer-1; last != (ev.Kind == store.EventsLost) {
			t.Fatalf("event %d of %d: %+v", i+1, redis.EventBuffer, ev)
		}
	}
	if err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, ch); ev.Kind != store.EventAccountChanged || ev.PrimaryOnly {
		t.Errorf("event %+v, want account-changed for all sessions", ev)
	}
}

// TestCounterWindowServer checks the fixed window on a real server, where
// time cannot be moved: a later increment with a longer ttl does not
// extend the window, and a counter does expire.
func TestCounterWindowServer(t *testing.T) {
	srv := testredis.Start(t)
	s := open(t, redis.Options{Addrs: []string{srv.Addr()}})
	if _, err := s.Incr(t.Context(), "k", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(t.Context(), "k", 1, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, srv.Addr())
	ttl, err := raw.PTTL(t.Context(), "passgate:cnt:{k}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL %v after a second increment, want at most the first window's 1h", ttl)
	}

	if _, err := s.Incr(t.Context(), "short", 5, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "expiry", func() error {
		v, err := s.Get(t.Context(), "short")
		if err == nil && v != 0 {
			err = errorf("counter still %d", v)
		}
		return err
	})
}
