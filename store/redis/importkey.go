package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

// scriptImportLookupKey stores ARGV[1] as the lookup key if there is none
// and returns false, or false too if the stored key equals it; otherwise
// it changes nothing and returns the stored key.
var scriptImportLookupKey = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  return false
end
if v == ARGV[1] then return false end
return v
`)

// scriptReplaceLookupKey replaces the lookup key ARGV[1] by ARGV[2] and
// returns 1, or returns 0 if the stored key is no longer ARGV[1].
var scriptReplaceLookupKey = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// ImportLookupKey makes key (32 bytes) the installation's lookup key, so
// that app passwords copied from another store, whose tags are HMACs under
// key, are found (passgate store migrate). With no key stored, key is
// stored; with the same key stored, nothing changes. A different stored
// key is replaced only if no account has an app password (their tags
// would no longer be found); otherwise the error wraps store.ErrExists
// and nothing changes.
//
// The check for app passwords and the replacement are two steps: an app
// password created in between by a running instance would be orphaned.
// Replacing is meant for a fresh Redis before instances use it, and is
// logged as a warning: instances that already loaded the old key keep
// using it until they restart.
func (s *Store) ImportLookupKey(ctx context.Context, key []byte) error {
	if len(key) != lookupKeySize {
		return fmt.Errorf("redis: import lookup key: key has %d bytes, want %d", len(key), lookupKeySize)
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	var old []byte
	err := s.do(ctx, "import lookup key", func(ctx context.Context) error {
		v, err := scriptImportLookupKey.Run(ctx, s.rdb, []string{s.lookupKeyKey()}, key).Text()
		switch {
		case errors.Is(err, goredis.Nil):
			return nil
		case err != nil:
			return err
		}
		old = []byte(v)
		return nil
	})
	if err != nil {
		return err
	}
	if old != nil {
		if err := s.replaceLookupKey(ctx, old, key); err != nil {
			return err
		}
	}
	s.key = bytes.Clone(key)
	return nil
}

// replaceLookupKey replaces the stored key old by key if no app password
// depends on old.
func (s *Store) replaceLookupKey(ctx context.Context, old, key []byte) error {
	n, err := s.countAppPasswords(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("redis: import lookup key: a different lookup key is stored and %d app passwords depend on it: %w",
			n, store.ErrExists)
	}
	return s.do(ctx, "import lookup key", func(ctx context.Context) error {
		ok, err := scriptReplaceLookupKey.Run(ctx, s.rdb, []string{s.lookupKeyKey()}, old, key).Int()
		if err != nil {
			return err
		}
		if ok == 0 {
			return fail("the lookup key changed concurrently; try again")
		}
		s.log.Warn("redis: lookup key replaced by an imported one; restart instances that were already running on this Redis",
			"key_prefix", s.prefix)
		return nil
	})
}

// countAppPasswords returns how many app passwords all accounts hold, read
// in pages of accounts (each page one pipeline and one call deadline).
func (s *Store) countAppPasswords(ctx context.Context) (int64, error) {
	var total int64
	min := "-"
	for {
		var page []string
		err := s.do(ctx, "count app passwords", func(ctx context.Context) error {
			var err error
			page, err = s.rdb.ZRangeByLex(ctx, s.accountsKey(), &goredis.ZRangeBy{Min: min, Max: "+", Count: listPage}).Result()
			if err != nil || len(page) == 0 {
				return err
			}
			cmds := make([]*goredis.IntCmd, len(page))
			_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, u := range page {
					cmds[i] = p.HLen(ctx, s.userKey(u, "apppass"))
				}
				return nil
			})
			for _, c := range cmds {
				total += c.Val()
			}
			return err
		})
		if err != nil {
			return 0, err
		}
		if len(page) < listPage {
			return total, nil
		}
		min = "(" + page[len(page)-1]
	}
}
