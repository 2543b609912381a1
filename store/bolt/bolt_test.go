package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/internal/testleak"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/storetest"
)

func TestMain(m *testing.M) { testleak.VerifyTestMain(m) }

// open opens path and closes it when the test ends.
func open(t *testing.T, path string, opts bolt.Options) *bolt.DB {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	db, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newDB(t *testing.T) *bolt.DB {
	return open(t, filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{})
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Opener{
		New: func(t *testing.T) store.Store { return newDB(t) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			db := s.(*bolt.DB)
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, db.Path(), bolt.Options{})
		},
	})
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passgate.db")
	first := open(t, path, bolt.Options{})
	_, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %q does not name the path and the lock", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	open(t, path, bolt.Options{Timeout: 100 * time.Millisecond})
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passgate.db")
	open(t, path, bolt.Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %v, want 0600", mode)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passgate.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not bolt"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a non-database file succeeded")
	}
	if errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q: want one that names the path and is not ErrLocked", err)
	}
}

// rawCounts closes db and counts, with bbolt directly, the app-password
// records and tags index entries of username.
func rawCounts(t *testing.T, db *bolt.DB, username string) (records, tags int) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	raw, err := bbolt.Open(db.Path(), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	defer raw.Close()
	err = raw.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("apppass")).Bucket([]byte(username)); b != nil {
			records = b.Stats().KeyN
		}
		prefix := append([]byte(username), 0)
		c := tx.Bucket([]byte("tags")).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			tags++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return records, tags
}

func appPass(username, id string, tag string) store.AppPassword {
	return store.AppPassword{ID: id, Username: username, Verifier: "v", Tag: []byte(tag), Scopes: store.AllScopes, Created: time.Now()}
}

// A rejected create writes neither the record nor the index entry.
func TestCreateAppPasswordAllOrNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		dup  store.AppPassword
	}{
		{"DuplicateTag", appPass("alice", "id2", "tag1")},
		{"DuplicateID", appPass("alice", "id1", "tag2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			ctx := t.Context()
			if err := db.CreateAccount(ctx, store.Account{Username: "alice"}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAppPassword(ctx, appPass("alice", "id1", "tag1")); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAppPassword(ctx, tc.dup); !errors.Is(err, store.ErrExists) {
				t.Fatalf("CreateAppPassword(duplicate): %v, want ErrExists", err)
			}
			if records, tags := rawCounts(t, db, "alice"); records != 1 || tags != 1 {
				t.Errorf("file holds %d records and %d tags, want 1 and 1", records, tags)
			}
		})
	}
}

func TestRevokeAllCleansIndex(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	for _, u := range []string{"alice", "alice2"} {
		if err := db.CreateAccount(ctx, store.Account{Username: u}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b"} {
			if err := db.CreateAppPassword(ctx, appPass(u, id, "tag-"+id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := db.RevokeAllAppPasswords(ctx, []string{"alice"}); err != nil || n != 2 {
		t.Fatalf("RevokeAllAppPasswords = %d, %v", n, err)
	}
	path := db.Path()
	if records, tags := rawCounts(t, db, "alice"); records != 0 || tags != 0 {
		t.Errorf("alice: %d records and %d tags left, want none", records, tags)
	}
	// "alice" is a prefix of "alice2": alice2's index must be intact.
	if records, tags := rawCounts(t, open(t, path, bolt.Options{}), "alice2"); records != 2 || tags != 2 {
		t.Errorf("alice2: %d records and %d tags, want 2 and 2", records, tags)
	}
}

func TestInvalidArguments(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	for _, u := range []string{"", "a\x00b"} {
		err := db.CreateAccount(ctx, store.Account{Username: u})
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("CreateAccount(%q): %v, want an invalid-argument error", u, err)
		}
	}
	if err := db.CreateAccount(ctx, store.Account{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.AppPassword{appPass("alice", "", "tag"), appPass("alice", "id", "")} {
		err := db.CreateAppPassword(ctx, p)
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("CreateAppPassword(id %q, tag %q): %v, want an invalid-argument error", p.ID, p.Tag, err)
		}
	}
	err := db.UpdateAccount(ctx, "alice", func(a *store.Account) error {
		a.Username = "mallory"
		return nil
	})
	if err == nil {
		t.Error("UpdateAccount that renames the account succeeded")
	}
	if _, err := db.GetAccount(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAccount(mallory): %v, want ErrNotFound", err)
	}
}

func TestContextDone(t *testing.T) {
	db := newDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.CreateAccount(ctx, store.Account{Username: "alice"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateAccount(done ctx): %v, want context.Canceled", err)
	}
	if _, err := db.GetAccount(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account created despite done ctx: %v", err)
	}
	if _, err := db.Subscribe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe(done ctx): %v, want context.Canceled", err)
	}
}

func TestClose(t *testing.T) {
	db := newDB(t)
	ch, err := db.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after Close")
		}
	default:
		t.Fatal("subscriber channel open after Close returned")
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := db.Subscribe(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Subscribe after Close: %v, want ErrUnavailable", err)
	}
	if _, err := db.GetAccount(t.Context(), "alice"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetAccount after Close: %v, want ErrUnavailable", err)
	}
}

// Close racing with cancelled subscriptions and publishing writers must not
// panic (send on or double close of a channel); run with -race.
func TestCloseRace(t *testing.T) {
	db := newDB(t)
	ctx := t.Context()
	if err := db.CreateAccount(ctx, store.Account{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		sctx, cancel := context.WithCancel(ctx)
		if _, err := db.Subscribe(sctx); err != nil {
			t.Fatal(err)
		}
		wg.Go(cancel)
		wg.Go(func() {
			// Fails with ErrNotFound or, once closed, ErrUnavailable.
			db.UpdateAccount(ctx, "alice", func(a *store.Account) error {
				a.MFA = i%2 == 0
				return nil
			})
		})
	}
	wg.Go(func() { db.Close() })
	wg.Wait()
}

// A subscriber that does not read loses events beyond EventBuffer - 1 and
// gets store.EventsLost after them; writers do not wait for it, and the
// drops are logged.
func TestSlowSubscriber(t *testing.T) {
	log, logs := testlog.New(slog.LevelInfo)
	db := open(t, filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: log})
	ctx := t.Context()
	if err := db.CreateAccount(ctx, store.Account{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	const extra = 4
	ch, err := db.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range bolt.EventBuffer + extra {
		err := db.UpdateAccount(ctx, "alice", func(a *store.Account) error {
			a.PasswordHash = strings.Repeat("x", i+1)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateAccount %d: %v", i, err)
		}
	}
	if n := len(ch); n != bolt.EventBuffer {
		t.Fatalf("%d events buffered, want %d", n, bolt.EventBuffer)
	}
	if n := strings.Count(logs.String(), "dropped: subscriber buffer full"); n != extra+1 {
		t.Errorf("%d drop warnings, want %d:\n%s", n, extra+1, logs.String())
	}
	if strings.Contains(logs.String(), "xxx") {
		t.Error("log contains a password hash")
	}
	// The last slot holds the news that events were lost, after every
	// event that was kept.
	for i := range bolt.EventBuffer {
		ev := <-ch
		if last := i == bolt.EventBuffer-1; last != (ev.Kind == store.EventsLost) {
			t.Fatalf("event %d of %d: %+v", i+1, bolt.EventBuffer, ev)
		}
	}
	// Once drained, the subscriber gets events again.
	if err := db.UpdateAccount(ctx, "alice", func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Kind != store.EventAccountChanged || ev.PrimaryOnly {
		t.Errorf("event %+v, want account-changed for all sessions", ev)
	}
}
