package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// getAccount decodes the account stored under username.
func getAccount(tx *bbolt.Tx, username string) (store.Account, error) {
	return memoAccount(nil, tx, username)
}

// memoAccount is getAccount with the decoding through m (nil: none).
func memoAccount(m *memo[store.Account], tx *bbolt.Tx, username string) (store.Account, error) {
	v := tx.Bucket(bucketAccounts).Get([]byte(username))
	if v == nil {
		return store.Account{}, fail("account %q: %w", username, store.ErrNotFound)
	}
	return m.decode(username, v, func(raw []byte) (store.Account, error) {
		var a store.Account
		if err := json.Unmarshal(raw, &a); err != nil {
			return a, fmt.Errorf("decode account %q: %w", username, err)
		}
		return a, nil
	})
}

func putAccount(tx *bbolt.Tx, a store.Account) error {
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode account %q: %w", a.Username, err)
	}
	return tx.Bucket(bucketAccounts).Put([]byte(a.Username), v)
}

// CreateAccount stores a new account; store.ErrExists if the username is
// taken. The username must be normalised (non-empty, no 0x00).
func (db *DB) CreateAccount(ctx context.Context, a store.Account) error {
	return db.update(ctx, "create account", func(tx *bbolt.Tx) error {
		if a.Username == "" || strings.IndexByte(a.Username, 0) >= 0 {
			return fail("invalid username %q", a.Username)
		}
		if tx.Bucket(bucketAccounts).Get([]byte(a.Username)) != nil {
			return fail("account %q: %w", a.Username, store.ErrExists)
		}
		return putAccount(tx, a)
	})
}

// GetAccount returns store.ErrNotFound for an unknown username.
func (db *DB) GetAccount(ctx context.Context, username string) (store.Account, error) {
	var a store.Account
	err := db.view(ctx, "get account", func(tx *bbolt.Tx) error {
		var err error
		a, err = memoAccount(&db.accounts, tx, username)
		return err
	})
	return a, err
}

// UpdateAccount applies fn to the stored account inside one transaction (fn
// must not call back into db: the transaction holds the write lock). An error
// from fn, or fn changing the username, aborts without change; fn's error is
// wrapped. After the commit, EventAccountChanged is published when the
// account became disabled (PrimaryOnly false) or, otherwise, when MFA was
// turned on or the primary password hash changed (PrimaryOnly true).
func (db *DB) UpdateAccount(ctx context.Context, username string, fn func(*store.Account) error) error {
	var before, after store.Account
	err := db.update(ctx, "update account", func(tx *bbolt.Tx) error {
		var err error
		if before, err = getAccount(tx, username); err != nil {
			return err
		}
		after = before
		if err := fn(&after); err != nil {
			return txError{err}
		}
		if after.Username != username {
			return fail("account %q: the update changed the username", username)
		}
		return putAccount(tx, after)
	})
	if err != nil {
		return err
	}
	if ev, ok := store.AccountEvent(before, after); ok {
		db.publish(ev)
	}
	return nil
}

// ListAccounts returns all accounts ordered by username (bbolt keeps keys in
// byte order).
func (db *DB) ListAccounts(ctx context.Context) ([]store.Account, error) {
	var list []store.Account
	err := db.view(ctx, "list accounts", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var a store.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode account %q: %w", k, err)
			}
			list = append(list, a)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}
