package oauth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Cache keeps each user's access token until shortly before it expires and
// fetches it from Source once for all the logins that want it at the same
// moment. The zero value is not usable: set Source. Safe for concurrent use.
type Cache struct {
	Source Source

	// Early is how long before its expiry a token stops being handed out,
	// so that it does not expire between Token and the upstream's check.
	// If zero, one minute.
	Early time.Duration
	// NoExpiry is how long a token whose provider gave no expiry is kept.
	// If zero, ten minutes.
	NoExpiry time.Duration
	// FetchTimeout bounds one fetch from the provider. The fetch is shared
	// by every waiting login, so it does not end when the first of them
	// gives up; each waiting login still returns when its own ctx ends.
	// If zero, 30 seconds.
	FetchTimeout time.Duration
	// Now is the clock; if nil, time.Now.
	Now func() time.Time

	group  singleflight.Group
	mu     sync.Mutex
	tokens map[string]entry
	sweep  int // len(tokens) at which expired entries are next removed
}

type entry struct {
	token  string
	expiry time.Time // when the entry stops being handed out
}

// Token returns an access token for user: the cached one if it is not
// about to expire, otherwise a fresh one (one fetch, shared by every
// concurrent caller for the same user).
func (c *Cache) Token(ctx context.Context, user string) (string, error) {
	key := c.key(user)
	if tok, ok := c.cached(key); ok {
		return tok, nil
	}
	ch := c.group.DoChan(key, func() (any, error) { return c.fetch(user, key) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("fetch token: %w", ctx.Err())
	}
}

// Invalidate forgets user's token if it is still rejected, the token the
// upstream refused, so that the next Token fetches a new one. A token
// fetched since by another login is kept: many logins refused with the same
// stale token cause one fetch, not one each.
func (c *Cache) Invalidate(user, rejected string) {
	key := c.key(user)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tokens[key]; ok && e.token == rejected {
		delete(c.tokens, key)
	}
}

// key is the cache key: the user, or "" for a Shared source.
func (c *Cache) key(user string) string {
	if s, ok := c.Source.(Shared); ok && s.SharedToken() {
		return ""
	}
	return user
}

func (c *Cache) cached(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[key]
	if !ok || !c.now().Before(e.expiry) {
		return "", false
	}
	return e.token, true
}

// fetch runs once per key at a time (singleflight), on a context of its
// own so that one caller's cancellation does not fail the others.
func (c *Cache) fetch(user, key string) (any, error) {
	// A caller may have waited behind a fetch that just stored a token.
	if tok, ok := c.cached(key); ok {
		return tok, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.fetchTimeout())
	defer cancel()
	t, err := c.Source.Fetch(ctx, user)
	if err != nil {
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("fetch token: %w: the provider sent no access token", ErrUnavailable)
	}
	c.store(key, t)
	return t.AccessToken, nil
}

func (c *Cache) store(key string, t *oauth2.Token) {
	now := c.now()
	until := now.Add(c.noExpiry())
	if !t.Expiry.IsZero() {
		until = t.Expiry.Add(-c.early())
		if !until.After(now) {
			// A lifetime shorter than Early: keep it for half of it.
			until = now.Add(t.Expiry.Sub(now) / 2)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = make(map[string]entry)
	}
	if len(c.tokens) >= c.sweep {
		for k, e := range c.tokens {
			if !now.Before(e.expiry) {
				delete(c.tokens, k)
			}
		}
		c.sweep = max(64, 2*len(c.tokens))
	}
	c.tokens[key] = entry{token: t.AccessToken, expiry: until}
}

func (c *Cache) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Cache) early() time.Duration {
	if c.Early == 0 {
		return time.Minute
	}
	return c.Early
}

func (c *Cache) noExpiry() time.Duration {
	if c.NoExpiry == 0 {
		return 10 * time.Minute
	}
	return c.NoExpiry
}

func (c *Cache) fetchTimeout() time.Duration {
	if c.FetchTimeout == 0 {
		return 30 * time.Second
	}
	return c.FetchTimeout
}
