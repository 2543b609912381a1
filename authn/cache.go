package authn

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/passgate/passgate/store"
)

// Defaults of Cache.
const (
	DefaultCacheTTL     = 5 * time.Minute
	DefaultCacheEntries = 100_000
	// cachePerUser bounds the entries of one account (one per client
	// secret and protocol: a phone and a laptop, IMAP and SMTP).
	cachePerUser = 16
)

// Cache remembers OK decisions for a short time, so that clients that
// reconnect all day (Outlook opens several connections at once) do not pay
// argon2id on every login. It keeps no secret: an entry is found by the
// account, then by HMAC-SHA256 under a process-random key of (username,
// protocol, secret as typed), compared in constant time.
//
// An entry lives TTL from the verification that made it, whatever its use.
// Drop removes entries as soon as the store publishes a revocation or an
// account change; Clear removes all (call it when events may have been
// missed, e.g. after the subscription was re-established). The expiry and
// allowed networks of the app password are re-checked on every hit. Scopes
// need no re-check: the protocol is part of the key and scopes never change
// without a revocation.
//
// The zero value is ready to use; it is safe for concurrent use.
type Cache struct {
	// TTL is how long a decision is reused. If zero, DefaultCacheTTL.
	TTL time.Duration
	// MaxEntries bounds the entries kept; the oldest are evicted first.
	// If zero, DefaultCacheEntries.
	MaxEntries int

	once sync.Once
	key  [32]byte

	mu     sync.Mutex
	byUser map[string][]*cacheEntry
	order  list.List // of *cacheEntry, oldest first
	gen    uint64    // bumped by Drop and Clear
}

type cacheEntry struct {
	user    string
	mac     [sha256.Size]byte
	d       Decision
	expires time.Time
	elem    *list.Element
}

// mac is the entry key of (user, protocol, secret).
func (c *Cache) mac(user string, proto store.Scope, secret string) [sha256.Size]byte {
	c.once.Do(func() { rand.Read(c.key[:]) })
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(proto))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var m [sha256.Size]byte
	h.Sum(m[:0])
	return m
}

// generation is read before a verification and passed to put, so that a
// decision made before a Drop is not stored after it.
func (c *Cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// lookup returns the cached OK decision for a, if any is live and the app
// password's expiry and allowed networks still admit a.
func (c *Cache) lookup(user string, a Attempt, now time.Time) (Decision, bool) {
	m := c.mac(user, a.Protocol, a.Secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	var hit *cacheEntry
	for _, e := range c.byUser[user] {
		if subtle.ConstantTimeCompare(e.mac[:], m[:]) == 1 {
			hit = e
		}
	}
	if hit == nil {
		return Decision{}, false
	}
	r := hit.d.restrict
	switch {
	case !now.Before(hit.expires), r != nil && !r.expires.IsZero() && !r.expires.After(now):
		c.remove(hit)
		return Decision{}, false
	case r != nil && !allowed(r.allowFrom, a.RemoteIP):
		return Decision{}, false
	}
	return hit.d, true
}

// put stores an OK decision unless the cache changed generation since gen.
func (c *Cache) put(gen uint64, user string, a Attempt, d Decision, now time.Time) {
	if d.Result != OK || user == "" {
		return
	}
	m := c.mac(user, a.Protocol, a.Secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.byUser == nil {
		c.byUser = make(map[string][]*cacheEntry)
	}
	// Entries share one TTL, so the oldest expire first.
	for f := c.order.Front(); f != nil && !now.Before(f.Value.(*cacheEntry).expires); f = c.order.Front() {
		c.remove(f.Value.(*cacheEntry))
	}
	for _, e := range c.byUser[user] {
		if subtle.ConstantTimeCompare(e.mac[:], m[:]) == 1 {
			c.remove(e)
			break
		}
	}
	if es := c.byUser[user]; len(es) >= cachePerUser {
		c.remove(es[0])
	}
	e := &cacheEntry{user: user, mac: m, d: d, expires: now.Add(orDefault(c.TTL, DefaultCacheTTL))}
	e.elem = c.order.PushBack(e)
	c.byUser[user] = append(c.byUser[user], e)
	for c.order.Len() > orDefault(c.MaxEntries, DefaultCacheEntries) {
		c.remove(c.order.Front().Value.(*cacheEntry))
	}
}

// remove deletes e; c.mu must be held.
func (c *Cache) remove(e *cacheEntry) {
	c.order.Remove(e.elem)
	es := c.byUser[e.user]
	for i, x := range es {
		if x == e {
			es = append(es[:i:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(c.byUser, e.user)
	} else {
		c.byUser[e.user] = es
	}
}

// Drop removes the entries an event invalidates: those of the revoked app
// password for EventAppPasswordRevoked, every entry of the account for
// any other event (disabled, MFA turned on, primary password changed).
func (c *Cache) Drop(ev store.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, e := range append([]*cacheEntry(nil), c.byUser[ev.Username]...) {
		if ev.Kind != store.EventAppPasswordRevoked || ev.AppPasswordID == "" || e.d.AppPasswordID == ev.AppPasswordID {
			c.remove(e)
		}
	}
}

// Clear removes every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.byUser = nil
	c.order.Init()
}

// Len returns the number of entries, expired ones not yet removed
// included (for tests and metrics).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
