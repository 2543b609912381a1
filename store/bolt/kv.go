package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// bucketKV holds key -> 8-byte big-endian expiry (unix nanoseconds, by
// Options.Now) followed by the value.
//
// There is no background sweep: an expired key counts as absent, is
// removed when touched (GetKV deletes it, PutKV and AddKV overwrite it),
// and Open removes expired keys in one pass over at most openSweepLimit
// keys. Keys may hold secrets (session IDs), so errors never name them.
var bucketKV = []byte("kv")

// expirySize is the length of the expiry prefix of a stored value.
const expirySize = 8

// openSweepLimit bounds how many keys Open examines for expiry.
const openSweepLimit = 100_000

var _ store.KV = (*DB)(nil)

// checkKey rejects keys bbolt cannot store.
func checkKey(key string) error {
	if key == "" {
		return fail("empty key")
	}
	if len(key) > bbolt.MaxKeySize {
		return fail("key of %d bytes is longer than %d", len(key), bbolt.MaxKeySize)
	}
	return nil
}

// checkPut rejects the arguments of PutKV and AddKV that cannot be stored.
func checkPut(key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fail("ttl %v is not positive", ttl)
	}
	return checkKey(key)
}

// encodeKV is the stored form of value, expiring ttl after now.
func encodeKV(now time.Time, ttl time.Duration, value []byte) []byte {
	exp := now.UnixNano()
	if ttl > math.MaxInt64-time.Duration(exp) {
		exp = math.MaxInt64 // beyond year 2262: never
	} else {
		exp += int64(ttl)
	}
	v := make([]byte, expirySize, expirySize+len(value))
	binary.BigEndian.PutUint64(v, uint64(exp))
	return append(v, value...)
}

// live reports whether the stored form v has not expired at now. A record
// too short to hold an expiry (a damaged file) counts as expired.
func live(v []byte, now time.Time) bool {
	return len(v) >= expirySize && now.UnixNano() < int64(binary.BigEndian.Uint64(v))
}

// PutKV stores value under key for ttl (> 0), replacing any value.
func (db *DB) PutKV(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkPut(key, ttl); err != nil {
		return wrap("put kv", err)
	}
	return db.update(ctx, "put kv", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKV).Put([]byte(key), encodeKV(db.now(), ttl, value))
	})
}

// AddKV stores value under key for ttl (> 0) only if key is absent or
// expired, and reports whether it did. Check and write are one transaction.
func (db *DB) AddKV(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkPut(key, ttl); err != nil {
		return false, wrap("add kv", err)
	}
	added := false
	err := db.update(ctx, "add kv", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		now := db.now()
		if v := b.Get([]byte(key)); v != nil && live(v, now) {
			return nil
		}
		added = true
		return b.Put([]byte(key), encodeKV(now, ttl, value))
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// GetKV returns a copy of the value, or store.ErrNotFound if key is absent
// or expired. An expired key is then deleted.
func (db *DB) GetKV(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, wrap("get kv", err)
	}
	var value []byte
	expired := false
	err := db.view(ctx, "get kv", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v != nil && live(v, db.now()) {
			value = bytes.Clone(v[expirySize:])
			return nil
		}
		expired = v != nil
		return fail("key: %w", store.ErrNotFound)
	})
	if expired {
		db.deleteExpired(key)
	}
	return value, err
}

// deleteExpired deletes key if it is (still) expired. It is housekeeping:
// a failure leaves an expired key that the next write or Open removes.
func (db *DB) deleteExpired(key string) {
	err := db.bdb.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if v := b.Get([]byte(key)); v != nil && !live(v, db.now()) {
			return b.Delete([]byte(key))
		}
		return nil
	})
	if err != nil {
		db.log.Debug("bolt: delete expired kv key", "err", err)
	}
}

// DeleteKV removes key; absent keys are not an error.
func (db *DB) DeleteKV(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return wrap("delete kv", err)
	}
	return db.update(ctx, "delete kv", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKV).Delete([]byte(key))
	})
}

// sweepKV deletes the keys expired at now among the first openSweepLimit
// keys of the kv bucket.
func sweepKV(tx *bbolt.Tx, now time.Time) error {
	var expired [][]byte
	c := tx.Bucket(bucketKV).Cursor()
	n := 0
	for k, v := c.First(); k != nil && n < openSweepLimit; k, v = c.Next() {
		n++
		if !live(v, now) {
			expired = append(expired, bytes.Clone(k))
		}
	}
	// Deleted after the walk (keys copied): deleting under a moving cursor
	// can skip keys.
	for _, k := range expired {
		if err := tx.Bucket(bucketKV).Delete(k); err != nil {
			return fmt.Errorf("sweep kv: %w", err)
		}
	}
	return nil
}
