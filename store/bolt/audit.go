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
// number -> JSON store.AuditRecord, for sign-ins and changes;
// bucketAuditFail the same for failures (store.AuditRecord.Failure),
// capped apart. Both take their numbers from the NextSequence of the
// account's bucketAudit bucket, so together they are in append order.
// Files written before the split have failures in bucketAudit too; they
// age out as it rolls.
var (
	bucketAudit     = []byte("audit")
	bucketAuditFail = []byte("auditfail")
)

// auditBucket is the top-level bucket that keeps rec's kind.
func auditBucket(rec store.AuditRecord) []byte {
	if rec.Failure() {
		return bucketAuditFail
	}
	return bucketAudit
}

var _ store.AuditLog = (*DB)(nil)

// AppendAudit stores rec under rec.Username and, in the same transaction,
// drops the records of its kind older than the newest store.AuditKeep. If no account
// named rec.Username exists (checked in that transaction too), it stores
// nothing and returns nil. Revoking app passwords or changing the account
// leaves its audit records alone.
func (db *DB) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	return db.AppendAuditBatch(ctx, []store.AuditRecord{rec})
}

// AppendAuditBatch stores recs in order as AppendAudit would one by one,
// in one transaction (one fsync for the lot), trimming each list it
// touched once at the end.
func (db *DB) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	vals := make([][]byte, len(recs))
	for i, rec := range recs {
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("bolt: append audit: encode: %w", err)
		}
		vals[i] = v
	}
	return db.update(ctx, "append audit", func(tx *bbolt.Tx) error {
		touched := map[*bbolt.Bucket]bool{}
		for i, rec := range recs {
			b, err := appendAudit(tx, rec, vals[i])
			if err != nil {
				return err
			}
			if b != nil {
				touched[b] = true
			}
		}
		for b := range touched {
			if err := trimAudit(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// appendAudit puts rec (encoded as v) into its account's list of its kind
// and returns that list; nil if the account does not exist.
func appendAudit(tx *bbolt.Tx, rec store.AuditRecord, v []byte) (*bbolt.Bucket, error) {
	name := []byte(rec.Username)
	if tx.Bucket(bucketAccounts).Get(name) == nil {
		return nil, nil
	}
	seqs, err := tx.Bucket(bucketAudit).CreateBucketIfNotExists(name)
	if err != nil {
		return nil, fmt.Errorf("audit bucket %q: %w", rec.Username, err)
	}
	b, err := tx.Bucket(auditBucket(rec)).CreateBucketIfNotExists(name)
	if err != nil {
		return nil, fmt.Errorf("audit bucket %q: %w", rec.Username, err)
	}
	seq, err := seqs.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("audit sequence %q: %w", rec.Username, err)
	}
	if err := b.Put(auditKey(seq), v); err != nil {
		return nil, fmt.Errorf("put audit record %q: %w", rec.Username, err)
	}
	return b, nil
}

// auditKey is the key of the record with sequence number seq.
func auditKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// trimAudit deletes the records of b older than its newest
// store.AuditKeep (the numbers of one bucket have gaps: the other kind
// took them).
func trimAudit(b *bbolt.Bucket) error {
	c := b.Cursor()
	k, _ := c.Last()
	for kept := 0; k != nil && kept < store.AuditKeep; kept++ {
		k, _ = c.Prev()
	}
	var old [][]byte
	for ; k != nil; k, _ = c.Prev() {
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

// RecentAudit returns up to n records of the account (at most
// store.AuditMax), both kinds merged in append order, newest first (none
// if n <= 0); store.ErrNotFound if the account does not exist.
func (db *DB) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	var lists [2][]store.SeqRecord
	err := db.view(ctx, "recent audit", func(tx *bbolt.Tx) error {
		name := []byte(username)
		if tx.Bucket(bucketAccounts).Get(name) == nil {
			return fail("account %q: %w", username, store.ErrNotFound)
		}
		for i, top := range [][]byte{bucketAudit, bucketAuditFail} {
			var err error
			if lists[i], err = newestAudit(tx.Bucket(top).Bucket(name), username, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return store.MergeAudit(lists[0], lists[1], n), nil
}

// newestAudit returns up to n records of b (nil: none), newest first.
func newestAudit(b *bbolt.Bucket, username string, n int) ([]store.SeqRecord, error) {
	if b == nil {
		return nil, nil
	}
	var recs []store.SeqRecord
	c := b.Cursor()
	for k, v := c.Last(); k != nil && len(recs) < n; k, v = c.Prev() {
		seq := binary.BigEndian.Uint64(k)
		var r store.AuditRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode audit record %d of %q: %w", seq, username, err)
		}
		recs = append(recs, store.SeqRecord{Seq: seq, Rec: r})
	}
	return recs, nil
}
