// Package sessions owns passgate's live relayed sessions and ends each one
// when its credential stops holding: on a revocation event, when events
// may have been lost, every RecheckInterval, and at its app password's
// expiry.
//
// A front-end registers a session after its upstream login and removes it
// when the session is over:
//
//	remove, err := reg.Add(ctx, sessions.Session{...}, cancel)
//	if err != nil {
//		return err // revoked meanwhile, or the store is down: refuse the login
//	}
//	defer remove()
//
// and the program runs Watch once, which follows the store's events:
//
//	reg := &sessions.Registry{Store: st, Cache: cache, Logger: log}
//	if _, err := reg.Watch(ctx); err != nil {
//		return err
//	}
package sessions

// Implementation notes (invariants every change must keep):
//
//   - No revocation is missed around a login: Add registers the session
//     first and then checks it against the store. A change committed before
//     the check is seen by it; the event of one committed after it is
//     handled after the registration, and finds the session.
//   - No lost event is outlived for long: every store.EventsLost triggers
//     Reconcile, which checks every live session in one store read
//     (store.CheckSessions), and so does every RecheckInterval, so a
//     session whose credential is gone ends within that interval even if
//     no one noticed the loss.
//   - A session with an expiring app password ends at the expiry, by its
//     own timer, without any store read.
//   - The policy is authn's (authn.Decision.Revalidate, and the directory's
//     refusals from authn); this package only decides when to ask.
//   - An end func is called at most once, never under the lock, and only
//     for a session that was still registered.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// DefaultRecheckInterval is how often Watch reconciles every live session
// with the store when RecheckInterval is zero.
const DefaultRecheckInterval = 60 * time.Second

// ErrRevoked is returned (wrapped, with the authn.Result) by Add when the
// store no longer admits the session's credential.
var ErrRevoked = errors.New("sessions: credential no longer valid")

// ErrLimit is returned by Add when the account already has MaxPerUser live
// sessions.
var ErrLimit = errors.New("sessions: too many sessions for this account")

// Metrics counts sessions that the registry ends (internal/metrics
// implements it). by is "event" (a revocation event), "reconcile" or
// "expiry".
type Metrics interface {
	SessionEnded(protocol store.Scope, by string)
}

// Store is what the registry needs of the store (store.Store implements
// it).
type Store interface {
	Subscribe(ctx context.Context) (<-chan store.Event, error)
	CheckSessions(ctx context.Context, refs []store.SessionRef) ([]store.SessionState, error)
}

// Directory says which accounts the operator's directory no longer admits
// (authn.Verifier implements it).
type Directory interface {
	// DirectoryRefusals asks the directory afresh about usernames and
	// returns those it refuses (deleted, disabled) with the reason; an
	// account it cannot answer for is left out.
	DirectoryRefusals(ctx context.Context, usernames []string) map[string]authn.Result
}

// Cache is the cache of verified logins that revocations must reach
// (authn.Cache implements it).
type Cache interface {
	Drop(ev store.Event)
	Clear()
}

var (
	_ Store     = (store.Store)(nil)
	_ Cache     = (*authn.Cache)(nil)
	_ Directory = (*authn.Verifier)(nil)
)

// Session describes one live relayed session.
type Session struct {
	ID       string
	Protocol store.Scope // store.ScopeIMAP, store.ScopeSMTP
	Remote   netip.AddrPort
	Started  time.Time
	// Login is the OK decision the session logged in with: whose session
	// it is (Username, AppPasswordID), when it expires, and what the store
	// must still hold for it to go on.
	Login authn.Decision
}

func (s Session) ref() store.SessionRef {
	return store.SessionRef{Username: s.Login.Username, AppPasswordID: s.Login.AppPasswordID}
}

// Registry is the set of live sessions, indexed by username so that an
// event finds the sessions it concerns without a scan. Set the fields
// before the first Add; the zero value of each is documented. All methods
// are safe for concurrent use.
type Registry struct {
	// Store is checked against by Add and Reconcile and followed by Watch.
	// If nil, Add checks nothing and Watch fails (tests of a front-end
	// alone).
	Store Store
	// Cache, if not nil, drops the cached logins an event concerns, and is
	// cleared when events were lost.
	Cache Cache
	// Directory, if not nil, is asked in every Reconcile about the
	// accounts of the live sessions that the store still admits; the
	// sessions of those it refuses (deleted or disabled in the operator's
	// directory) end. Set RecheckInterval to the directory's cache TTL so
	// that they end within it.
	Directory Directory
	// RecheckInterval is how often Watch reconciles. If zero,
	// DefaultRecheckInterval.
	RecheckInterval time.Duration
	// Logger receives a line per ended session or event. If nil, nothing
	// is logged.
	Logger *slog.Logger
	// Now is the clock of expiry decisions. If nil, time.Now.
	Now func() time.Time
	// MaxPerUser bounds the live sessions of one account, every protocol
	// and address together; Add refuses one more with ErrLimit. Zero: no
	// bound.
	MaxPerUser int
	// Metrics, if not nil, counts the sessions the registry ends.
	Metrics Metrics

	mu     sync.Mutex
	byUser map[string]map[*entry]struct{}
}

// entry is one registered session and the function that ends it.
type entry struct {
	s     Session
	end   func()
	timer *time.Timer // ends the session at expiry; nil without one
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Registry) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Registry) interval() time.Duration {
	if r.RecheckInterval > 0 {
		return r.RecheckInterval
	}
	return DefaultRecheckInterval
}

// Add registers a live session, then checks it against the store (see the
// implementation notes). end ends the session; it is called at most once,
// from another goroutine, and must not block (a context.CancelFunc is
// typical). On success the returned remove unregisters the session and is
// idempotent: call it when the session is over. On error the session is
// not registered: the error is ErrLimit when the account has MaxPerUser
// sessions already, wraps ErrRevoked when the store no longer admits the
// credential, or is the store's failure; either way the login must be
// refused. The count and the registration are one step under the lock, so
// parallel logins cannot overshoot MaxPerUser.
func (r *Registry) Add(ctx context.Context, s Session, end func()) (remove func(), err error) {
	e := &entry{s: s, end: end}
	r.mu.Lock()
	if r.byUser == nil {
		r.byUser = make(map[string]map[*entry]struct{})
	}
	set := r.byUser[s.Login.Username]
	if r.MaxPerUser > 0 && len(set) >= r.MaxPerUser {
		r.mu.Unlock()
		return nil, ErrLimit
	}
	if set == nil {
		set = make(map[*entry]struct{})
		r.byUser[s.Login.Username] = set
	}
	set[e] = struct{}{}
	if exp := s.Login.Expires(); !exp.IsZero() {
		e.timer = time.AfterFunc(exp.Sub(r.now()), func() { r.expire(e) })
	}
	r.mu.Unlock()
	remove = func() { r.take(e) }
	if r.Store == nil {
		return remove, nil
	}
	states, err := r.Store.CheckSessions(ctx, []store.SessionRef{s.ref()})
	if err != nil {
		remove()
		return nil, fmt.Errorf("sessions: check the new session: %w", err)
	}
	if res := r.revalidate(e, states[0], r.now()); res != authn.OK {
		remove()
		return nil, fmt.Errorf("%w: %s", ErrRevoked, res)
	}
	return remove, nil
}

// revalidate asks authn whether e's login still holds given cur.
func (r *Registry) revalidate(e *entry, cur store.SessionState, now time.Time) authn.Result {
	return e.s.Login.Revalidate(cur, e.s.Protocol, e.s.Remote.Addr(), now)
}

// take unregisters the entries that are still registered and returns them
// (their end functions are for the caller to call, outside the lock).
func (r *Registry) take(entries ...*entry) []*entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var taken []*entry
	for _, e := range entries {
		set := r.byUser[e.s.Login.Username]
		if _, ok := set[e]; !ok {
			continue
		}
		delete(set, e)
		if len(set) == 0 {
			delete(r.byUser, e.s.Login.Username)
		}
		if e.timer != nil {
			e.timer.Stop()
		}
		taken = append(taken, e)
	}
	return taken
}

// endTaken calls the end function of each entry that take returned and
// counts it as ended by by.
func (r *Registry) endTaken(by string, entries []*entry) int {
	for _, e := range entries {
		e.end()
		if r.Metrics != nil {
			r.Metrics.SessionEnded(e.s.Protocol, by)
		}
	}
	return len(entries)
}

// expire ends e at its app password's expiry, if it is still registered.
func (r *Registry) expire(e *entry) {
	if r.endTaken("expiry", r.take(e)) > 0 {
		r.logEnded(e, string(authn.Expired), "expiry")
	}
}

func (r *Registry) logEnded(e *entry, reason, by string) {
	r.log().Info("session ended", "session", e.s.ID, "protocol", e.s.Protocol, "user", e.s.Login.Username,
		"app_password_id", e.s.Login.AppPasswordID, "reason", reason, "by", by)
}

// End ends the sessions that the event concerns and returns how many:
// EventAppPasswordRevoked ends that user's sessions with that
// AppPasswordID; EventAccountChanged with PrimaryOnly ends that user's
// primary-password sessions; without PrimaryOnly, all of that user's
// sessions. Ended sessions leave the registry at once.
func (r *Registry) End(ev store.Event) int {
	match := func(e *entry) bool {
		switch ev.Kind {
		case store.EventAppPasswordRevoked:
			return ev.AppPasswordID != "" && e.s.Login.AppPasswordID == ev.AppPasswordID
		case store.EventAccountChanged:
			return !ev.PrimaryOnly || e.s.Login.AppPasswordID == ""
		}
		return false
	}
	r.mu.Lock()
	var matched []*entry
	for e := range r.byUser[ev.Username] {
		if match(e) {
			matched = append(matched, e)
		}
	}
	r.mu.Unlock()
	n := r.endTaken("event", r.take(matched...))
	if n > 0 {
		r.log().Info("sessions ended", "event", ev.Kind, "user", ev.Username,
			"app_password_id", ev.AppPasswordID, "primary_only", ev.PrimaryOnly, "count", n)
	}
	return n
}

// Sessions returns a snapshot of the live sessions, oldest first.
func (r *Registry) Sessions() []Session {
	entries := r.snapshot()
	out := make([]Session, len(entries))
	for i, e := range entries {
		out[i] = e.s
	}
	slices.SortFunc(out, func(a, b Session) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// snapshot returns every registered entry.
func (r *Registry) snapshot() []*entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*entry
	for _, set := range r.byUser {
		for e := range set {
			out = append(out, e)
		}
	}
	return out
}
