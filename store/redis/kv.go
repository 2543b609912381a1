package redis

import (
	"context"
	"time"

	"github.com/passgate/passgate/store"
)

var _ store.KV = (*Store)(nil)

// kvKey is the key of short-lived value name; the braces make name its
// hash tag.
func (s *Store) kvKey(name string) string { return s.prefix + ":kv:{" + name + "}" }

// checkTTL rejects a TTL that is not positive.
func checkTTL(what, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fail("%s %q: ttl %v is not positive", what, key, ttl)
	}
	return nil
}

// PutKV stores value under key for ttl (> 0, rounded up to a
// millisecond), replacing any value and its TTL (SET PX).
func (s *Store) PutKV(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.do(ctx, "put value", func(ctx context.Context) error {
		if err := checkTTL("value", key, ttl); err != nil {
			return err
		}
		return s.rdb.Set(ctx, s.kvKey(key), value, ceilMillis(ttl)).Err()
	})
}

// AddKV stores value under key for ttl only if key is absent (SET NX PX)
// and reports whether it did. A key that exists keeps its value and TTL.
func (s *Store) AddKV(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	var added bool
	err := s.do(ctx, "add value", func(ctx context.Context) error {
		if err := checkTTL("value", key, ttl); err != nil {
			return err
		}
		var err error
		added, err = s.rdb.SetNX(ctx, s.kvKey(key), value, ceilMillis(ttl)).Result()
		return err
	})
	return added, err
}

// GetKV returns the value, or store.ErrNotFound if absent or expired.
func (s *Store) GetKV(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.do(ctx, "get value", func(ctx context.Context) error {
		var err error
		v, err = s.rdb.Get(ctx, s.kvKey(key)).Bytes()
		return notFound(err, "value %q", key)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// DeleteKV removes key; absent keys are not an error.
func (s *Store) DeleteKV(ctx context.Context, key string) error {
	return s.do(ctx, "delete value", func(ctx context.Context) error {
		return s.rdb.Del(ctx, s.kvKey(key)).Err()
	})
}

// ceilMillis rounds d up to a whole millisecond, Redis's TTL unit.
func ceilMillis(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
