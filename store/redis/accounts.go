package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/internal/wait"
	"github.com/passgate/passgate/store"
)

// maxUpdateAttempts bounds the optimistic retries of UpdateAccount.
const maxUpdateAttempts = 16

// listPage is how many accounts ListAccounts reads per round trip.
const listPage = 500

// CreateAccount stores a new account; store.ErrExists if the username is
// taken. The username is added to the accounts index first, then the
// account is created with SET NX: a failure in between leaves only an
// index entry, which ListAccounts skips, so the account is stored whole
// or not at all.
func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	return s.do(ctx, "create account", func(ctx context.Context) error {
		if a.Username == "" {
			return fail("invalid username %q", a.Username)
		}
		v, err := json.Marshal(a)
		if err != nil {
			return fail("encode account %q: %w", a.Username, err)
		}
		if err := s.rdb.ZAdd(ctx, s.accountsKey(), goredis.Z{Member: a.Username}).Err(); err != nil {
			return err
		}
		ok, err := s.rdb.SetNX(ctx, s.userKey(a.Username, "account"), v, 0).Result()
		if err != nil {
			return err
		}
		if !ok {
			return fail("account %q: %w", a.Username, store.ErrExists)
		}
		return nil
	})
}

// GetAccount returns store.ErrNotFound for an unknown username.
func (s *Store) GetAccount(ctx context.Context, username string) (store.Account, error) {
	var a store.Account
	err := s.do(ctx, "get account", func(ctx context.Context) error {
		v, err := s.rdb.Get(ctx, s.userKey(username, "account")).Bytes()
		if err != nil {
			return notFound(err, "account %q", username)
		}
		return decodeAccount(username, v, &a)
	})
	return a, err
}

// UpdateAccount applies fn to the stored account and stores the result
// with WATCH and MULTI/EXEC: if another writer changed the account in
// between, it waits a random moment (so that the writers that collided do
// not collide again in lockstep), reads again and calls fn again (fn may
// run more than once), at most 16 times. An error from fn, or fn changing the username, aborts
// without change. The EventAccountChanged the change causes (see
// store.Store) is published inside the same MULTI/EXEC.
func (s *Store) UpdateAccount(ctx context.Context, username string, fn func(*store.Account) error) error {
	key := s.userKey(username, "account")
	return s.do(ctx, "update account", func(ctx context.Context) error {
		for i := range maxUpdateAttempts {
			err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
				return s.updateTx(ctx, tx, key, username, fn)
			}, key)
			if !errors.Is(err, goredis.TxFailedErr) {
				return err
			}
			if err := conflictBackoff(ctx, i); err != nil {
				return err
			}
		}
		return fmt.Errorf("account %q changed concurrently %d times in a row", username, maxUpdateAttempts)
	})
}

// updateTx is one attempt of UpdateAccount on a watched key.
func (s *Store) updateTx(ctx context.Context, tx *goredis.Tx, key, username string, fn func(*store.Account) error) error {
	v, err := tx.Get(ctx, key).Bytes()
	if err != nil {
		return notFound(err, "account %q", username)
	}
	var before store.Account
	if err := decodeAccount(username, v, &before); err != nil {
		return err
	}
	after := before
	if err := fn(&after); err != nil {
		return logicError{err}
	}
	if after.Username != username {
		return fail("account %q: the update changed the username", username)
	}
	nv, err := json.Marshal(after)
	if err != nil {
		return fail("encode account %q: %w", username, err)
	}
	ev, publish := store.AccountEvent(before, after)
	var evJSON []byte
	if publish {
		if evJSON, err = json.Marshal(ev); err != nil {
			return fail("encode event: %w", err)
		}
	}
	_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, key, nv, 0)
		if publish {
			p.Publish(ctx, s.channel(), evJSON)
		}
		return nil
	})
	return err
}

// ListAccounts returns all accounts ordered by username (byte order), read
// in pages of 500 (each page its own call deadline). Index entries without
// an account (a CreateAccount that failed half-way) are skipped.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	list := []store.Account{}
	min := "-"
	for {
		var page []string
		err := s.do(ctx, "list accounts", func(ctx context.Context) error {
			var err error
			page, err = s.rdb.ZRangeByLex(ctx, s.accountsKey(), &goredis.ZRangeBy{Min: min, Max: "+", Count: listPage}).Result()
			if err != nil || len(page) == 0 {
				return err
			}
			return s.getAccounts(ctx, page, &list)
		})
		if err != nil {
			return nil, err
		}
		if len(page) < listPage {
			return list, nil
		}
		min = "(" + page[len(page)-1]
	}
}

// getAccounts appends the accounts of usernames that exist to list, in
// one pipeline.
func (s *Store) getAccounts(ctx context.Context, usernames []string, list *[]store.Account) error {
	cmds := make([]*goredis.StringCmd, len(usernames))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, u := range usernames {
			cmds[i] = p.Get(ctx, s.userKey(u, "account"))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	for i, cmd := range cmds {
		v, err := cmd.Bytes()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return err
		}
		var a store.Account
		if err := decodeAccount(usernames[i], v, &a); err != nil {
			return err
		}
		*list = append(*list, a)
	}
	return nil
}

func decodeAccount(username string, v []byte, a *store.Account) error {
	if err := json.Unmarshal(v, a); err != nil {
		return fmt.Errorf("decode account %q: %w", username, err)
	}
	return nil
}

// notFound turns redis.Nil into store.ErrNotFound about what; other errors
// pass unchanged.
func notFound(err error, what string, args ...any) error {
	if errors.Is(err, goredis.Nil) {
		return fail(what+": %w", append(args, store.ErrNotFound)...)
	}
	return err
}

// conflictBackoff waits after the attempt-th failed optimistic update: a
// random time up to 1 ms << attempt, at most 50 ms, or until ctx ends.
func conflictBackoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)
	return wait.Sleep(ctx, rand.N(ceiling)+1)
}
