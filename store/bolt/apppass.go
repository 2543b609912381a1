package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// tagPrefix is the prefix of every tags key of username.
func tagPrefix(username string) []byte {
	return append([]byte(username), 0)
}

// tagKey is the tags index key of tag in username's account.
func tagKey(username string, tag []byte) []byte {
	return append(tagPrefix(username), tag...)
}

// requireAccount fails with store.ErrNotFound if username has no account.
func requireAccount(tx *bbolt.Tx, username string) error {
	if tx.Bucket(bucketAccounts).Get([]byte(username)) == nil {
		return fail("account %q: %w", username, store.ErrNotFound)
	}
	return nil
}

// getAppPassword decodes app password id of username.
func getAppPassword(tx *bbolt.Tx, username, id string) (store.AppPassword, error) {
	return memoAppPassword(nil, tx, username, id)
}

// memoAppPassword is getAppPassword with the decoding through m (nil:
// none).
func memoAppPassword(m *memo[store.AppPassword], tx *bbolt.Tx, username, id string) (store.AppPassword, error) {
	b := tx.Bucket(bucketAppPass).Bucket([]byte(username))
	if b == nil {
		return store.AppPassword{}, fail("app password %q of %q: %w", id, username, store.ErrNotFound)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return store.AppPassword{}, fail("app password %q of %q: %w", id, username, store.ErrNotFound)
	}
	return m.decode(username+"\x00"+id, v, func(raw []byte) (store.AppPassword, error) {
		var p store.AppPassword
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("decode app password %q of %q: %w", id, username, err)
		}
		return p, nil
	})
}

// putAppPassword stores p, creating its account's bucket if needed. It does
// not touch the tags index.
func putAppPassword(tx *bbolt.Tx, p store.AppPassword) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode app password %q: %w", p.ID, err)
	}
	b, err := tx.Bucket(bucketAppPass).CreateBucketIfNotExists([]byte(p.Username))
	if err != nil {
		return err
	}
	return b.Put([]byte(p.ID), v)
}

// CreateAppPassword stores p and its tags index entry in one transaction;
// store.ErrNotFound if the account does not exist, store.ErrExists if the ID
// or the tag is already used in that account. ID and Tag must not be empty.
func (db *DB) CreateAppPassword(ctx context.Context, p store.AppPassword) error {
	return db.update(ctx, "create app password", func(tx *bbolt.Tx) error {
		if p.ID == "" || len(p.Tag) == 0 {
			return fail("app password of %q: empty ID or tag", p.Username)
		}
		if err := requireAccount(tx, p.Username); err != nil {
			return err
		}
		if b := tx.Bucket(bucketAppPass).Bucket([]byte(p.Username)); b != nil && b.Get([]byte(p.ID)) != nil {
			return fail("app password %q of %q: %w", p.ID, p.Username, store.ErrExists)
		}
		tags := tx.Bucket(bucketTags)
		key := tagKey(p.Username, p.Tag)
		if tags.Get(key) != nil {
			return fail("app password tag of %q: %w", p.Username, store.ErrExists)
		}
		if err := putAppPassword(tx, p); err != nil {
			return err
		}
		return tags.Put(key, []byte(p.ID))
	})
}

// ListAppPasswords returns the account's app passwords ordered by creation
// time (then by ID); store.ErrNotFound if the account does not exist.
func (db *DB) ListAppPasswords(ctx context.Context, username string) ([]store.AppPassword, error) {
	list := []store.AppPassword{}
	err := db.view(ctx, "list app passwords", func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, username); err != nil {
			return err
		}
		b := tx.Bucket(bucketAppPass).Bucket([]byte(username))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var p store.AppPassword
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode app password %q of %q: %w", k, username, err)
			}
			list = append(list, p)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	store.SortAppPasswords(list)
	return list, nil
}

// FindAppPassword returns the app password of username whose Tag equals tag,
// or store.ErrNotFound.
func (db *DB) FindAppPassword(ctx context.Context, username string, tag []byte) (store.AppPassword, error) {
	var p store.AppPassword
	err := db.view(ctx, "find app password", func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketTags).Get(tagKey(username, tag))
		if id == nil {
			return fail("app password tag of %q: %w", username, store.ErrNotFound)
		}
		var err error
		if p, err = memoAppPassword(&db.apppasses, tx, username, string(id)); err != nil {
			return fmt.Errorf("tags index points at a missing app password: %w", err)
		}
		if !bytes.Equal(p.Tag, tag) {
			return fmt.Errorf("tags index points at app password %q of %q with another tag", p.ID, username)
		}
		return nil
	})
	return p, err
}

// deleteAppPassword removes app password id of username and its tags entry.
func deleteAppPassword(tx *bbolt.Tx, username, id string) error {
	p, err := getAppPassword(tx, username, id)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketTags).Delete(tagKey(username, p.Tag)); err != nil {
		return err
	}
	return tx.Bucket(bucketAppPass).Bucket([]byte(username)).Delete([]byte(id))
}

// RevokeAppPassword deletes one app password and, after the commit, publishes
// EventAppPasswordRevoked; store.ErrNotFound if there is no such password.
func (db *DB) RevokeAppPassword(ctx context.Context, username, id string) error {
	err := db.update(ctx, "revoke app password", func(tx *bbolt.Tx) error {
		return deleteAppPassword(tx, username, id)
	})
	if err != nil {
		return err
	}
	db.publish(store.Event{Kind: store.EventAppPasswordRevoked, Username: username, AppPasswordID: id})
	return nil
}

// RevokeAllAppPasswords deletes every app password of every listed account
// in one transaction and returns how many were deleted. An unknown username
// fails the whole call with store.ErrNotFound before anything is deleted.
// One EventAppPasswordRevoked per deleted password follows the commit.
func (db *DB) RevokeAllAppPasswords(ctx context.Context, usernames []string) (int, error) {
	var events []store.Event
	err := db.update(ctx, "revoke all app passwords", func(tx *bbolt.Tx) error {
		events = nil
		for _, u := range usernames {
			if err := requireAccount(tx, u); err != nil {
				return err
			}
		}
		for _, u := range usernames {
			revoked, err := deleteAll(tx, u)
			if err != nil {
				return err
			}
			for _, id := range revoked {
				events = append(events, store.Event{Kind: store.EventAppPasswordRevoked, Username: u, AppPasswordID: id})
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	db.publish(events...)
	return len(events), nil
}

// deleteAll removes username's app-password bucket and tags entries and
// returns the IDs it held.
func deleteAll(tx *bbolt.Tx, username string) ([]string, error) {
	var ids []string
	parent := tx.Bucket(bucketAppPass)
	if b := parent.Bucket([]byte(username)); b != nil {
		if err := b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		}); err != nil {
			return nil, err
		}
		if err := parent.DeleteBucket([]byte(username)); err != nil {
			return nil, err
		}
	}
	// Collect first: deleting under a cursor can skip keys.
	var keys [][]byte
	prefix := tagPrefix(username)
	c := tx.Bucket(bucketTags).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketTags).Delete(k); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// TouchAppPassword records a successful use; store.ErrNotFound if the
// password is gone (revoked meanwhile).
func (db *DB) TouchAppPassword(ctx context.Context, username, id string, use store.LastUse) error {
	return db.update(ctx, "touch app password", func(tx *bbolt.Tx) error {
		p, err := getAppPassword(tx, username, id)
		if err != nil {
			return err
		}
		p.LastUsed = use
		return putAppPassword(tx, p)
	})
}

// UpdateAppPassword applies fn to app password id of username and stores
// the result in one transaction (bbolt has one writer at a time, so two
// updates never interleave); store.ErrNotFound if there is no such
// password.
func (db *DB) UpdateAppPassword(ctx context.Context, username, id string, fn func(*store.AppPassword) error) (store.AppPassword, error) {
	var after store.AppPassword
	err := db.update(ctx, "update app password", func(tx *bbolt.Tx) error {
		before, err := getAppPassword(tx, username, id)
		if err != nil {
			return err
		}
		after = before
		after.Tag = bytes.Clone(before.Tag)
		if err := fn(&after); err != nil {
			return txError{err}
		}
		if err := store.CheckAppPasswordUpdate(&before, &after); err != nil {
			return fail("app password %q of %q: %w", id, username, err)
		}
		return putAppPassword(tx, after)
	})
	return after, err
}
