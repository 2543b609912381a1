// Package bolt is the embedded store.Store backend: one bbolt file, every
// change in one transaction.
//
// Layout of the file:
//
//	accounts  username -> JSON store.Account
//	apppass   username (nested bucket) -> id -> JSON store.AppPassword
//	tags      username + 0x00 + tag -> id (the lookup index of FindAppPassword)
//	meta      "lookup-key" -> the installation's 32-byte lookup key
//	audit     username (nested bucket) -> big-endian sequence -> JSON store.AuditRecord
//	auditfail the same, for failed attempts (capped apart from audit)
//	kv        key -> 8-byte big-endian expiry (unix nanoseconds) + value
//
// An expired kv key counts as absent; it is removed when touched and by
// Open (one bounded pass). There is no background sweep.
//
// Usernames are normalised (store.NormalizeUsername), so they never contain
// 0x00 and the tags prefix is unambiguous. Events are fanned out in process,
// after the transaction committed; only one process can open the file at a
// time (bbolt holds an exclusive lock), so a second process gets ErrLocked.
//
// Typical use:
//
//	db, err := bolt.Open("/var/lib/passgate/passgate.db", bolt.Options{Logger: log})
//	if errors.Is(err, bolt.ErrLocked) { /* go through the running server */ }
//	defer db.Close()
package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/passgate/passgate/store"
)

// ErrLocked is returned by Open when another process holds the database
// file (usually a running `passgate serve`).
var ErrLocked = errors.New("database file is locked by another process")

// Bucket names and meta keys.
var (
	bucketAccounts = []byte("accounts")
	bucketAppPass  = []byte("apppass")
	bucketTags     = []byte("tags")
	bucketMeta     = []byte("meta")

	metaLookupKey = []byte("lookup-key")
)

// Options configures Open. The zero value works.
type Options struct {
	// Timeout is how long Open waits for the file lock before it returns
	// ErrLocked. If zero (or negative), one second.
	Timeout time.Duration
	// Logger receives warnings (dropped events). If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock of KV expiry (and of nothing else). If nil,
	// time.Now. Tests set it to move time without sleeping.
	Now func() time.Time
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return time.Second
	}
	return o.Timeout
}

func (o Options) now() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// DB is a store.Store kept in one bbolt file. It is safe for concurrent use.
type DB struct {
	bdb  *bbolt.DB
	path string
	log  *slog.Logger
	now  func() time.Time // KV expiry clock

	keyMu sync.Mutex
	key   []byte // cached lookup key, nil until first LookupKey

	subMu  sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	// decoded records of the login path's reads (memo.go)
	accounts  memo[store.Account]
	apppasses memo[store.AppPassword]
}

var _ store.Store = (*DB)(nil)

// Open opens (or creates, with mode 0600) the database file at path. If
// another process holds the file longer than opts.Timeout, the error wraps
// ErrLocked and names the path.
func Open(path string, opts Options) (*DB, error) {
	bopts := *bbolt.DefaultOptions
	bopts.Timeout = opts.timeout()
	bdb, err := bbolt.Open(path, 0o600, &bopts)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	now := opts.now()
	err = bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketAccounts, bucketAppPass, bucketTags, bucketMeta, bucketAudit, bucketAuditFail, bucketKV} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return sweepKV(tx, now())
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: initialise: %w", path, err)
	}
	return &DB{
		bdb:  bdb,
		path: path,
		log:  opts.logger(),
		now:  now,
		subs: make(map[*subscriber]struct{}),

		accounts:  memo[store.Account]{clone: cloneAccount},
		apppasses: memo[store.AppPassword]{clone: cloneAppPassword},
	}, nil
}

// Path returns the path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes every subscriber channel and then the file. Calls after the
// first return nil.
func (db *DB) Close() error {
	db.subMu.Lock()
	if db.closed {
		db.subMu.Unlock()
		return nil
	}
	db.closed = true
	for sub := range db.subs {
		sub.stop()
		delete(db.subs, sub)
		close(sub.ch)
	}
	db.subMu.Unlock()
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", db.path, err)
	}
	return nil
}

// txError marks an error decided by passgate's logic inside a transaction (a
// store sentinel, an invalid argument, or the caller's fn error), as opposed
// to a bbolt failure, which wrap reports as store.ErrUnavailable.
type txError struct{ err error }

func (e txError) Error() string { return e.err.Error() }
func (e txError) Unwrap() error { return e.err }

// fail returns a txError built like fmt.Errorf.
func fail(format string, args ...any) error {
	return txError{fmt.Errorf(format, args...)}
}

// wrap names the operation in err and marks backend failures unavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var te txError
	if errors.As(err, &te) {
		return fmt.Errorf("bolt: %s: %w", op, te.err)
	}
	return fmt.Errorf("bolt: %s: %w: %w", op, store.ErrUnavailable, err)
}

// update runs fn in one read-write transaction, after checking ctx.
func (db *DB) update(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return wrap(op, db.bdb.Update(fn))
}

// view runs fn in one read-only transaction, after checking ctx.
func (db *DB) view(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return wrap(op, db.bdb.View(fn))
}
