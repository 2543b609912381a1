package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
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

// GetMany returns the values of keys, in order, with one pipelined round
// trip (per node in a Cluster: the keys are in different slots, so MGET
// would not do).
func (s *Store) GetMany(ctx context.Context, keys []string) ([]int64, error) {
	out := make([]int64, len(keys))
	err := s.do(ctx, "get counters", func(ctx context.Context) error {
		cmds := make([]*goredis.StringCmd, len(keys))
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Get(ctx, s.counterKey(k))
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		for i, c := range cmds {
			str, err := c.Result()
			if errors.Is(err, goredis.Nil) {
				out[i] = 0
				continue
			}
			if err != nil {
				return err
			}
			if out[i], err = strconv.ParseInt(str, 10, 64); err != nil {
				return fmt.Errorf("counter %q: %w", keys[i], err)
			}
		}
		return nil
	})
	return out, err
}

// IncrMany applies incrs in order with one pipelined round trip (per node
// in a Cluster: each counter is its own slot), one scriptChange per
// counter, so each change is atomic on its counter. Scripts the server has
// not cached yet are sent whole in a second round trip (only the ones that
// did not run).
func (s *Store) IncrMany(ctx context.Context, incrs []store.Incr) ([]int64, error) {
	out := make([]int64, len(incrs))
	err := s.do(ctx, "incr counters", func(ctx context.Context) error {
		for _, in := range incrs {
			if in.N > 0 {
				if err := checkTTL("counter", in.Key, in.TTL); err != nil {
					return err
				}
			}
		}
		run := func(idx []int, eval bool) ([]*goredis.Cmd, error) {
			cmds := make([]*goredis.Cmd, len(idx))
			_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for j, i := range idx {
					in := incrs[i]
					keys := []string{s.counterKey(in.Key)}
					args := []any{in.N, ceilMillis(max(in.TTL, 0)).Milliseconds(), in.Reset}
					if eval {
						cmds[j] = scriptChange.Eval(ctx, p, keys, args...)
					} else {
						cmds[j] = scriptChange.EvalSha(ctx, p, keys, args...)
					}
				}
				return nil
			})
			return cmds, err
		}
		all := make([]int, len(incrs))
		for i := range all {
			all[i] = i
		}
		cmds, _ := run(all, false)
		var again []int
		for j, c := range cmds {
			if isNoScript(c.Err()) {
				again = append(again, all[j])
				continue
			}
			v, err := c.Int64()
			if err != nil {
				return err
			}
			out[all[j]] = v
		}
		if len(again) == 0 {
			return nil
		}
		cmds, _ = run(again, true)
		for j, c := range cmds {
			v, err := c.Int64()
			if err != nil {
				return err
			}
			out[again[j]] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// isNoScript reports whether err means that the server does not have the
// script cached (EVALSHA before the first EVAL on that node).
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT"))
}

// Delete removes the counter; deleting a missing counter is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, "delete counter", func(ctx context.Context) error {
		return s.rdb.Del(ctx, s.counterKey(key)).Err()
	})
}
