package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// lookupKeySize is the size of the lookup key in bytes.
const lookupKeySize = 32

// LookupKey returns the installation's random 32-byte key for lookup tags,
// creating it on first use. Callers get a copy; every caller, in this and
// later processes, gets the same key.
func (db *DB) LookupKey(ctx context.Context) ([]byte, error) {
	db.keyMu.Lock()
	defer db.keyMu.Unlock()
	if db.key != nil {
		return bytes.Clone(db.key), nil
	}
	var key []byte
	err := db.update(ctx, "lookup key", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get(metaLookupKey); v != nil {
			if len(v) != lookupKeySize {
				return fmt.Errorf("stored lookup key has %d bytes, want %d", len(v), lookupKeySize)
			}
			key = bytes.Clone(v)
			return nil
		}
		key = make([]byte, lookupKeySize)
		rand.Read(key) // never fails (crypto/rand, Go 1.24+)
		return b.Put(metaLookupKey, key)
	})
	if err != nil {
		return nil, err
	}
	db.key = key
	return bytes.Clone(key), nil
}
