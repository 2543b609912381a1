// Package memcount keeps store.Counters in process memory, for a single
// passgate on the bbolt store; several instances share counters through
// store/redis instead.
//
// Expired counters are removed lazily: when touched, and by a sweep of the
// whole map at most once a minute (on an Incr). Memory is therefore
// bounded by the number of distinct keys counted within one window.
package memcount

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/passgate/passgate/store"
)

// sweepInterval is the least time between two sweeps of expired counters.
const sweepInterval = time.Minute

// Counters is an in-memory store.Counters. The zero value is ready to use
// and it is safe for concurrent use.
type Counters struct {
	// Now is the clock. If nil, time.Now. Tests set it to move time
	// without sleeping.
	Now func() time.Time

	mu        sync.Mutex
	m         map[string]counter
	nextSweep time.Time
}

type counter struct {
	value   int64
	expires time.Time
}

var _ store.Counters = (*Counters)(nil)

func (c *Counters) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// live returns key's counter if it exists and has not expired (removing it
// if it has). c.mu must be held.
func (c *Counters) live(key string, now time.Time) (counter, bool) {
	v, ok := c.m[key]
	if ok && !now.Before(v.expires) {
		delete(c.m, key)
		return counter{}, false
	}
	return v, ok
}

// Incr adds n to the counter named key and returns the new value. A new
// counter expires ttl after its first increment; later increments do not
// extend it. ttl must be positive.
func (c *Counters) Incr(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memcount: incr: %w", err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("memcount: incr %q: ttl %v is not positive", key, ttl)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]counter)
	}
	c.sweep(now)
	v, ok := c.live(key, now)
	if !ok {
		v.expires = now.Add(ttl)
	}
	v.value += n
	c.m[key] = v
	return v.value, nil
}

// sweep removes every expired counter, at most once per sweepInterval.
// c.mu must be held.
func (c *Counters) sweep(now time.Time) {
	if now.Before(c.nextSweep) {
		return
	}
	c.nextSweep = now.Add(sweepInterval)
	for k, v := range c.m {
		if !now.Before(v.expires) {
			delete(c.m, k)
		}
	}
}

// Get returns the counter's value, 0 if it does not exist or expired.
func (c *Counters) Get(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memcount: get: %w", err)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	v, _ := c.live(key, now)
	return v.value, nil
}

// GetMany returns the values of keys, in order.
func (c *Counters) GetMany(ctx context.Context, keys []string) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcount: get: %w", err)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, _ := c.live(k, now)
		out[i] = v.value
	}
	return out, nil
}

// IncrMany applies incrs in order and returns the new values, all under
// one lock (so the whole set is atomic here, more than store.Counters
// requires). An entry with a positive N and a TTL that is not positive
// fails the call before anything changes.
func (c *Counters) IncrMany(ctx context.Context, incrs []store.Incr) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcount: incr: %w", err)
	}
	for _, in := range incrs {
		if in.N > 0 && in.TTL <= 0 {
			return nil, fmt.Errorf("memcount: incr %q: ttl %v is not positive", in.Key, in.TTL)
		}
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]counter)
	}
	c.sweep(now)
	out := make([]int64, len(incrs))
	for i, in := range incrs {
		if in.Reset {
			delete(c.m, in.Key)
		}
		v, ok := c.live(in.Key, now)
		switch {
		case in.N > 0:
			if !ok {
				v.expires = now.Add(in.TTL)
			}
			v.value += in.N
			c.m[in.Key] = v
		case in.N < 0 && ok:
			v.value = max(0, v.value+in.N)
			c.m[in.Key] = v
		}
		out[i] = v.value
	}
	return out, nil
}

// Delete removes the counter; deleting a missing counter is not an error.
func (c *Counters) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcount: delete: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

// Len returns how many counters are held, expired ones not yet swept
// included (for tests and metrics).
func (c *Counters) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
