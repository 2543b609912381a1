package proxy

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/passgate/passgate/store"
)

// Session describes one live relayed session.
type Session struct {
	ID            string
	Protocol      string // "imap", "smtp"
	Username      string // normalised
	AppPasswordID string // "" when logged in with the primary password
	Remote        netip.AddrPort
	Started       time.Time
}

// Registry is the set of live sessions, indexed by username so that a
// revocation finds the sessions it concerns without a scan. The zero value is
// not usable: call NewRegistry. All methods are safe for concurrent use.
type Registry struct {
	logger *slog.Logger

	mu     sync.Mutex
	byUser map[string]map[*entry]struct{}
}

// entry is one registered session and the function that ends it.
type entry struct {
	s    Session
	end  func()
	once sync.Once
}

// NewRegistry returns an empty registry; a nil logger logs nothing.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{logger: logger, byUser: make(map[string]map[*entry]struct{})}
}

// Add registers a live session; end is called (once, from another goroutine:
// the one that calls End or EndAll) to end it, and must not block (a
// context.CancelFunc is typical). The returned remove func unregisters the
// session and is idempotent; call it when the session is over.
func (r *Registry) Add(s Session, end func()) (remove func()) {
	e := &entry{s: s, end: end}
	r.mu.Lock()
	set := r.byUser[s.Username]
	if set == nil {
		set = make(map[*entry]struct{})
		r.byUser[s.Username] = set
	}
	set[e] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.removeLocked(e)
	}
}

func (r *Registry) removeLocked(e *entry) {
	set := r.byUser[e.s.Username]
	delete(set, e)
	if len(set) == 0 {
		delete(r.byUser, e.s.Username)
	}
}

// End ends the sessions that the event concerns and returns how many:
// EventAppPasswordRevoked ends that user's sessions with that AppPasswordID;
// EventAccountChanged with PrimaryOnly ends that user's sessions with an empty
// AppPasswordID; without PrimaryOnly, all of that user's sessions. Ended
// sessions leave the registry at once.
func (r *Registry) End(ev store.Event) int {
	match := func(e *entry) bool {
		switch ev.Kind {
		case store.EventAppPasswordRevoked:
			return ev.AppPasswordID != "" && e.s.AppPasswordID == ev.AppPasswordID
		case store.EventAccountChanged:
			return !ev.PrimaryOnly || e.s.AppPasswordID == ""
		}
		return false
	}
	r.mu.Lock()
	var ended []*entry
	for e := range r.byUser[ev.Username] {
		if match(e) {
			ended = append(ended, e)
			r.removeLocked(e)
		}
	}
	r.mu.Unlock()
	endEntries(ended)
	if len(ended) > 0 {
		r.logger.Info("sessions ended", "event", ev.Kind, "user", ev.Username,
			"app_password_id", ev.AppPasswordID, "primary_only", ev.PrimaryOnly, "count", len(ended))
	}
	return len(ended)
}

// endEntries calls each entry's end function (at most once per entry).
func endEntries(entries []*entry) {
	for _, e := range entries {
		e.once.Do(e.end)
	}
}

// Run reads events until the channel closes or ctx is done, calling End for
// each.
func (r *Registry) Run(ctx context.Context, events <-chan store.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			r.End(ev)
		}
	}
}

// Sessions returns a snapshot of the live sessions, oldest first.
func (r *Registry) Sessions() []Session {
	r.mu.Lock()
	var out []Session
	for _, set := range r.byUser {
		for e := range set {
			out = append(out, e.s)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// EndAll ends every session (at shutdown) and returns how many.
func (r *Registry) EndAll() int {
	r.mu.Lock()
	var ended []*entry
	for _, set := range r.byUser {
		for e := range set {
			ended = append(ended, e)
		}
	}
	clear(r.byUser)
	r.mu.Unlock()
	endEntries(ended)
	return len(ended)
}
