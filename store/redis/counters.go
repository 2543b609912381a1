package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// counterKey is the key of counter name; the braces make name its hash
// tag, so a counter lives in one Cluster slot whatever its name.
func (s *Store) counterKey(name string) string { return s.prefix + ":cnt:{" + name + "}" }

// Incr adds n to the counter named key and returns the new value, in one
// script (INCRBY, then PEXPIRE if the counter has no expiry yet). A new
// counter expires ttl after its first increment, rounded up to a
// millisecond; later increments do not extend it. ttl must be positive.
func (s *Store) Incr(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	var v int64
	err := s.do(ctx, "incr counter", func(ctx context.Context) error {
		if err := checkTTL("counter", key, ttl); err != nil {
			return err
		}
		var err error
		v, err = scriptIncr.Run(ctx, s.rdb, []string{s.counterKey(key)}, n, ceilMillis(ttl).Milliseconds()).Int64()
		return err
	})
	return v, err
}

// Get returns the counter's value, 0 if it does not exist or expired.
func (s *Store) Get(ctx context.Context, key string) (int64, error) {
	var v int64
	err := s.do(ctx, "get counter", func(ctx context.Context) error {
		str, err := s.rdb.Get(ctx, s.counterKey(key)).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if v, err = strconv.ParseInt(str, 10, 64); err != nil {
			return fmt.Errorf("counter %q: %w", key, err)
		}
		return nil
	})
	return v, err
}

// Delete removes the counter; deleting a missing counter is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, "delete counter", func(ctx context.Context) error {
		return s.rdb.Del(ctx, s.counterKey(key)).Err()
	})
}
