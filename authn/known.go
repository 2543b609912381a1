package authn

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// maxKnownOutcomes bounds the memory of known refusals (see knownSet); the
// oldest are forgotten first.
const maxKnownOutcomes = 100_000

// knownSet remembers, for a while, the refusals the Verifier decided, each
// under the keyed MAC of (username, secret) with the state it was decided
// in (see login.state); it never holds a secret. A login whose MAC is
// known and whose state is unchanged gets the same refusal without a slow
// hash: a repeated wrong password costs one argon2id, then none. Its size
// is bounded: the oldest entries are forgotten first.
type knownSet struct {
	mu    sync.Mutex
	max   int // 0 = maxKnownOutcomes
	m     map[[16]byte]*list.Element
	order list.List // of *knownItem, oldest first (all share one TTL)
}

type knownItem struct {
	mac     [16]byte
	d       Decision
	expires time.Time
}

// get returns the refusal remembered under mac, if it has not expired.
func (s *knownSet) get(now time.Time, mac [16]byte) (Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	e, ok := s.m[mac]
	if !ok {
		return Decision{}, false
	}
	return e.Value.(*knownItem).d, true
}

// add remembers d under mac for ttl, replacing what was there.
func (s *knownSet) add(now time.Time, ttl time.Duration, mac [16]byte, d Decision) {
	d.restrict = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[16]byte]*list.Element)
	}
	s.expire(now)
	if e, ok := s.m[mac]; ok {
		s.remove(e)
	}
	s.m[mac] = s.order.PushBack(&knownItem{mac: mac, d: d, expires: now.Add(ttl)})
	for len(s.m) > orDefault(s.max, maxKnownOutcomes) {
		s.remove(s.order.Front())
	}
}

// forget removes mac's entry, if any.
func (s *knownSet) forget(mac [16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[mac]; ok {
		s.remove(e)
	}
}

// expire removes the expired entries; s.mu must be held.
func (s *knownSet) expire(now time.Time) {
	for e := s.order.Front(); e != nil && !now.Before(e.Value.(*knownItem).expires); e = s.order.Front() {
		s.remove(e)
	}
}

func (s *knownSet) remove(e *list.Element) {
	delete(s.m, e.Value.(*knownItem).mac)
	s.order.Remove(e)
}

// knownRefusal returns the refusal remembered for a's (user, secret) if
// the account's state is still the one it was decided in. The state is
// read from the store without a hash (prober; a Verifier that is not one
// is trusted to decide the same while the entry lives).
func (g *Guard) knownRefusal(ctx context.Context, a Attempt, user string) (Decision, bool) {
	mac := g.mac("known", user, a.Secret)
	d, ok := g.known.get(g.now(), mac)
	if !ok {
		return Decision{}, false
	}
	if p, ok := g.Verifier.(prober); ok {
		pr, err := p.probe(ctx, a)
		if err != nil {
			return Decision{}, false // the verification will report it
		}
		if pr.state != d.state {
			g.known.forget(mac)
			return Decision{}, false
		}
	}
	return d, true
}

// remember records a refusal decided by the Verifier.
func (g *Guard) remember(a Attempt, user string, d Decision) {
	g.known.add(g.now(), g.limits().window(), g.mac("known", user, a.Secret), d)
}

// prober is implemented by *Verifier: the store reads of a login, without
// its hash.
type prober interface {
	probe(ctx context.Context, a Attempt) (probe, error)
}
