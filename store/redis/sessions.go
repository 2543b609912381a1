package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

// CheckSessions reads the account of every ref's user and every ref's app
// password in one pipeline (in Cluster mode go-redis splits it by node;
// see store.Store). Each value is read atomically; the batch as a whole is
// not a snapshot, which a check of live sessions does not need.
func (s *Store) CheckSessions(ctx context.Context, refs []store.SessionRef) ([]store.SessionState, error) {
	out := make([]store.SessionState, len(refs))
	err := s.do(ctx, "check sessions", func(ctx context.Context) error {
		accounts := make(map[string]*goredis.StringCmd)
		passwords := make([]*goredis.StringCmd, len(refs))
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, ref := range refs {
				if accounts[ref.Username] == nil {
					accounts[ref.Username] = p.Get(ctx, s.userKey(ref.Username, "account"))
				}
				if ref.AppPasswordID != "" {
					passwords[i] = p.HGet(ctx, s.userKey(ref.Username, "apppass"), ref.AppPasswordID)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		decoded := make(map[string]*store.Account, len(accounts))
		for user, cmd := range accounts {
			if decoded[user], err = decodeIfExists(cmd, func(v string, a *store.Account) error {
				return decodeAccount(user, []byte(v), a)
			}); err != nil {
				return err
			}
		}
		for i, ref := range refs {
			out[i].Account = decoded[ref.Username]
			if passwords[i] == nil || out[i].Account == nil {
				continue
			}
			if out[i].AppPassword, err = decodeIfExists(passwords[i], func(v string, p *store.AppPassword) error {
				var err error
				*p, err = decodeAppPassword(ref.Username, ref.AppPasswordID, v, nil)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeIfExists decodes the value cmd read, or returns nil if the key or
// field did not exist.
func decodeIfExists[T any](cmd *goredis.StringCmd, decode func(string, *T) error) (*T, error) {
	v, err := cmd.Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var x T
	if err := decode(v, &x); err != nil {
		return nil, err
	}
	return &x, nil
}
