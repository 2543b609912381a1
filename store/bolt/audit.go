package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// bucketAudit holds one nested bucket per account: big-endian sequence
// number (bbolt's NextSequence, so append order) -> JSON store.AuditRecord.
var bucketAudit = []byte("audit")

var _ store.AuditLog = (*DB)(nil)

// AppendAudit stores rec under rec.Username and, in the same transaction,
// drops the records older than the newest store.AuditKeep. If no account
// named rec.Username exists (checked in that transaction too), it stores
// nothing and returns nil. Revoking app passwords or changing the account
// leaves its audit records alone.
func (db *DB) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("bolt: append audit: encode: %w", err)
	}
	return db.update(ctx, "append audit", func(tx *bbolt.Tx) error {
		name := []byte(rec.Username)
		if tx.Bucket(bucketAccounts).Get(name) == nil {
			return nil
		}
		b, err := tx.Bucket(bucketAudit).CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("audit bucket %q: %w", rec.Username, err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("audit sequence %q: %w", rec.Username, err)
		}
		if err := b.Put(auditKey(seq), v); err != nil {
			return fmt.Errorf("put audit record %q: %w", rec.Username, err)
		}
		return trimAudit(b, seq)
	})
}

// auditKey is the key of the record with sequence number seq.
func auditKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// trimAudit deletes the records of b older than the newest store.AuditKeep,
// the newest having sequence number last. Keys come only from NextSequence,
// so the kept ones are exactly those above last-AuditKeep.
func trimAudit(b *bbolt.Bucket, last uint64) error {
	if last <= store.AuditKeep {
		return nil
	}
	cutoff := last - store.AuditKeep
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cutoff; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	// Deleted after the walk (keys copied): deleting under a moving cursor
	// can skip keys.
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("trim audit: %w", err)
		}
	}
	return nil
}

// RecentAudit returns up to n records of the account, newest first (none
// if n <= 0); store.ErrNotFound if the account does not exist.
func (db *DB) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	var recs []store.AuditRecord
	err := db.view(ctx, "recent audit", func(tx *bbolt.Tx) error {
		name := []byte(username)
		if tx.Bucket(bucketAccounts).Get(name) == nil {
			return fail("account %q: %w", username, store.ErrNotFound)
		}
		b := tx.Bucket(bucketAudit).Bucket(name)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(recs) < n; k, v = c.Prev() {
			var r store.AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode audit record %d of %q: %w", binary.BigEndian.Uint64(k), username, err)
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}
