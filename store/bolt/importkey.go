package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// ImportLookupKey makes key (32 bytes) the installation's lookup key, so
// that app passwords copied from another store, whose tags are HMACs under
// key, are found (passgate store migrate). With no key stored, key is
// stored; with the same key stored, nothing changes. A different stored
// key is replaced only if no account has an app password (their tags
// would no longer be found); otherwise the error wraps store.ErrExists and
// nothing changes. The check and the change are one transaction.
func (db *DB) ImportLookupKey(ctx context.Context, key []byte) error {
	if len(key) != lookupKeySize {
		return fmt.Errorf("bolt: import lookup key: key has %d bytes, want %d", len(key), lookupKeySize)
	}
	db.keyMu.Lock()
	defer db.keyMu.Unlock()
	replaced := false
	err := db.update(ctx, "import lookup key", func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		old := meta.Get(metaLookupKey)
		if bytes.Equal(old, key) {
			return nil
		}
		if old != nil {
			if n := tx.Bucket(bucketTags).Stats().KeyN; n > 0 {
				return fail("a different lookup key is stored and %d app passwords depend on it: %w", n, store.ErrExists)
			}
			replaced = true
		}
		return meta.Put(metaLookupKey, bytes.Clone(key))
	})
	if err != nil {
		return err
	}
	if replaced {
		db.log.Warn("bolt: lookup key replaced by an imported one", "path", db.path)
	}
	db.key = bytes.Clone(key)
	return nil
}
