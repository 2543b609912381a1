package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

// CreateAppPassword stores p and its index entry in one script;
// store.ErrNotFound if the account does not exist, store.ErrExists if the
// ID or the tag is already used in that account. ID and Tag must not be
// empty.
func (s *Store) CreateAppPassword(ctx context.Context, p store.AppPassword) error {
	return s.do(ctx, "create app password", func(ctx context.Context) error {
		if p.ID == "" || len(p.Tag) == 0 {
			return fail("app password of %q: empty ID or tag", p.Username)
		}
		v, err := json.Marshal(p)
		if err != nil {
			return fail("encode app password %q: %w", p.ID, err)
		}
		res, err := scriptCreateAppPassword.Run(ctx, s.rdb, s.userKeys(p.Username), p.ID, hex.EncodeToString(p.Tag), v).Int()
		if err != nil {
			return err
		}
		switch res {
		case createOK:
			return nil
		case createNoAccount:
			return fail("account %q: %w", p.Username, store.ErrNotFound)
		case createDuplicateID:
			return fail("app password %q of %q: %w", p.ID, p.Username, store.ErrExists)
		case createDuplicateTag:
			return fail("app password tag of %q: %w", p.Username, store.ErrExists)
		}
		return fmt.Errorf("create script returned %d", res)
	})
}

// ListAppPasswords returns the account's app passwords ordered by creation
// time, then ID; store.ErrNotFound if the account does not exist. It reads
// one consistent snapshot (MULTI/EXEC).
func (s *Store) ListAppPasswords(ctx context.Context, username string) ([]store.AppPassword, error) {
	list := []store.AppPassword{}
	err := s.do(ctx, "list app passwords", func(ctx context.Context) error {
		keys := s.userKeys(username)
		var exists *goredis.IntCmd
		var recs, uses *goredis.MapStringStringCmd
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			exists = p.Exists(ctx, keys[0])
			recs = p.HGetAll(ctx, keys[1])
			uses = p.HGetAll(ctx, keys[3])
			return nil
		})
		if err != nil {
			return err
		}
		if exists.Val() == 0 {
			return fail("account %q: %w", username, store.ErrNotFound)
		}
		for id, rec := range recs.Val() {
			var last *string
			if u, ok := uses.Val()[id]; ok {
				last = &u
			}
			p, err := decodeAppPassword(username, id, rec, last)
			if err != nil {
				return err
			}
			list = append(list, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	store.SortAppPasswords(list)
	return list, nil
}

// FindAppPassword returns the app password of username whose Tag equals
// tag, or store.ErrNotFound. One round trip (a read-only script).
func (s *Store) FindAppPassword(ctx context.Context, username string, tag []byte) (store.AppPassword, error) {
	var p store.AppPassword
	err := s.do(ctx, "find app password", func(ctx context.Context) error {
		keys := s.userKeys(username)
		res, err := scriptFindAppPassword.Run(ctx, s.rdb, keys[1:], hex.EncodeToString(tag)).Slice()
		if err != nil {
			return notFound(err, "app password tag of %q", username)
		}
		if len(res) != 2 {
			return fmt.Errorf("find script returned %d values", len(res))
		}
		rec, _ := res[0].(string)
		var last *string
		if u, ok := res[1].(string); ok {
			last = &u
		}
		if p, err = decodeAppPassword(username, "", rec, last); err != nil {
			return err
		}
		if !bytes.Equal(p.Tag, tag) {
			return fmt.Errorf("tags index points at app password %q of %q with another tag", p.ID, username)
		}
		return nil
	})
	return p, err
}

// RevokeAppPassword deletes one app password and its index entry and
// publishes EventAppPasswordRevoked, all in one script;
// store.ErrNotFound if there is no such password.
func (s *Store) RevokeAppPassword(ctx context.Context, username, id string) error {
	return s.do(ctx, "revoke app password", func(ctx context.Context) error {
		ev, err := json.Marshal(store.Event{Kind: store.EventAppPasswordRevoked, Username: username, AppPasswordID: id})
		if err != nil {
			return fail("encode event: %w", err)
		}
		n, err := scriptRevokeAppPassword.Run(ctx, s.rdb, s.userKeys(username)[1:], id, s.channel(), ev).Int()
		if err != nil {
			return err
		}
		if n == 0 {
			return fail("app password %q of %q: %w", id, username, store.ErrNotFound)
		}
		return nil
	})
}

// RevokeAllAppPasswords deletes every app password of every listed account
// and returns how many were deleted; one EventAppPasswordRevoked per
// deleted password is published by the script that deleted it. An unknown
// username fails the whole call with store.ErrNotFound before anything is
// deleted.
//
// Atomicity: standalone and Sentinel run one script over all the accounts:
// all or nothing. In Cluster mode the accounts live in different slots, so
// the call first checks that every account exists, then runs one script
// per account: each account is revoked whole or not at all, but if Redis
// fails midway some accounts are revoked (and their events published) and
// the rest are not; the error then wraps store.ErrUnavailable and the count
// says how many were deleted. Repeating the call finishes the job (accounts
// are never deleted, so the check cannot fail the second time round).
func (s *Store) RevokeAllAppPasswords(ctx context.Context, usernames []string) (int, error) {
	if len(usernames) == 0 {
		return 0, s.do(ctx, "revoke all app passwords", func(context.Context) error { return nil })
	}
	if !s.cluster {
		var n int
		err := s.do(ctx, "revoke all app passwords", func(ctx context.Context) error {
			var err error
			n, err = s.revokeAll(ctx, usernames)
			return err
		})
		return n, err
	}
	err := s.do(ctx, "revoke all app passwords", func(ctx context.Context) error {
		return s.requireAccounts(ctx, usernames)
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, u := range usernames {
		err := s.do(ctx, "revoke all app passwords", func(ctx context.Context) error {
			n, err := s.revokeAll(ctx, []string{u})
			total += n
			return err
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// revokeAll runs scriptRevokeAll over usernames (all in one slot unless
// standalone) and returns how many app passwords it deleted.
func (s *Store) revokeAll(ctx context.Context, usernames []string) (int, error) {
	keys := make([]string, 0, 4*len(usernames))
	args := make([]any, 0, 2+len(usernames))
	args = append(args, s.channel(), string(store.EventAppPasswordRevoked))
	for _, u := range usernames {
		keys = append(keys, s.userKeys(u)...)
		args = append(args, u)
	}
	res, err := scriptRevokeAll.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return 0, err
	}
	if len(res) == 2 && res[0] == int64(0) {
		i, _ := res[1].(int64)
		if i < 1 || int(i) > len(usernames) {
			return 0, fmt.Errorf("revoke-all script returned account %d of %d", i, len(usernames))
		}
		return 0, fail("account %q: %w", usernames[i-1], store.ErrNotFound)
	}
	n := 0
	for _, ids := range res[1:] {
		l, _ := ids.([]any)
		n += len(l)
	}
	return n, nil
}

// requireAccounts fails with store.ErrNotFound unless every account
// exists (one pipeline; in Cluster mode go-redis sends it to each node).
func (s *Store) requireAccounts(ctx context.Context, usernames []string) error {
	cmds := make([]*goredis.IntCmd, len(usernames))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, u := range usernames {
			cmds[i] = p.Exists(ctx, s.userKey(u, "account"))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, cmd := range cmds {
		if cmd.Val() == 0 {
			return fail("account %q: %w", usernames[i], store.ErrNotFound)
		}
	}
	return nil
}

// TouchAppPassword records a successful use in one script;
// store.ErrNotFound if the password is gone (revoked meanwhile).
func (s *Store) TouchAppPassword(ctx context.Context, username, id string, use store.LastUse) error {
	return s.do(ctx, "touch app password", func(ctx context.Context) error {
		v, err := json.Marshal(use)
		if err != nil {
			return fail("encode last use: %w", err)
		}
		keys := s.userKeys(username)
		n, err := scriptTouchAppPassword.Run(ctx, s.rdb, []string{keys[1], keys[3]}, id, v).Int()
		if err != nil {
			return err
		}
		if n == 0 {
			return fail("app password %q of %q: %w", id, username, store.ErrNotFound)
		}
		return nil
	})
}

// decodeAppPassword decodes a record and, if last is not nil, the last use
// recorded after it was created. id, if not empty, must match the record.
func decodeAppPassword(username, id, rec string, last *string) (store.AppPassword, error) {
	var p store.AppPassword
	if err := json.Unmarshal([]byte(rec), &p); err != nil {
		return p, fmt.Errorf("decode app password %q of %q: %w", id, username, err)
	}
	if id != "" && p.ID != id {
		return p, errors.New("app password record under another ID")
	}
	if last != nil {
		if err := json.Unmarshal([]byte(*last), &p.LastUsed); err != nil {
			return p, fmt.Errorf("decode last use of %q of %q: %w", p.ID, username, err)
		}
	}
	return p, nil
}

// UpdateAppPassword applies fn to app password id of username and stores
// the result with WATCH and MULTI/EXEC on the account's app-password hash:
// if another writer changed it in between (another update, a revocation),
// it reads again and calls fn again, at most 16 times, as UpdateAccount.
// store.ErrNotFound if there is no such password.
func (s *Store) UpdateAppPassword(ctx context.Context, username, id string, fn func(*store.AppPassword) error) (store.AppPassword, error) {
	keys := s.userKeys(username)
	var after store.AppPassword
	err := s.do(ctx, "update app password", func(ctx context.Context) error {
		for i := range maxUpdateAttempts {
			err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
				var err error
				after, err = s.updateAppPasswordTx(ctx, tx, keys, username, id, fn)
				return err
			}, keys[1])
			if !errors.Is(err, goredis.TxFailedErr) {
				return err
			}
			if err := conflictBackoff(ctx, i); err != nil {
				return err
			}
		}
		return fmt.Errorf("app password %q of %q changed concurrently %d times in a row", id, username, maxUpdateAttempts)
	})
	return after, err
}

// updateAppPasswordTx is one attempt of UpdateAppPassword on the watched
// app-password hash (keys as userKeys).
func (s *Store) updateAppPasswordTx(ctx context.Context, tx *goredis.Tx, keys []string, username, id string, fn func(*store.AppPassword) error) (store.AppPassword, error) {
	rec, err := tx.HGet(ctx, keys[1], id).Result()
	if err != nil {
		return store.AppPassword{}, notFound(err, "app password %q of %q", id, username)
	}
	var last *string
	if u, err := tx.HGet(ctx, keys[3], id).Result(); err == nil {
		last = &u
	} else if !errors.Is(err, goredis.Nil) {
		return store.AppPassword{}, err
	}
	before, err := decodeAppPassword(username, id, rec, last)
	if err != nil {
		return store.AppPassword{}, err
	}
	after := before
	after.Tag = bytes.Clone(before.Tag)
	if err := fn(&after); err != nil {
		return store.AppPassword{}, logicError{err}
	}
	if err := store.CheckAppPasswordUpdate(&before, &after); err != nil {
		return store.AppPassword{}, fail("app password %q of %q: %w", id, username, err)
	}
	v, err := json.Marshal(after)
	if err != nil {
		return store.AppPassword{}, fail("encode app password %q: %w", id, err)
	}
	_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, keys[1], id, v)
		return nil
	})
	return after, err
}
