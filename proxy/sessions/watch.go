package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// retryAfter is how soon Watch tries again after a failed Reconcile (or
// RecheckInterval if shorter): the store may be back any moment.
const retryAfter = time.Second

// Reconcile checks every live session against the store in one batched
// read and ends those it no longer admits (revoked, expired, disabled, out
// of scope, primary password changed or MFA turned on), then asks the
// Directory, if any, about the accounts of the others and ends the
// sessions of those it refuses; it returns how many it ended.
func (r *Registry) Reconcile(ctx context.Context) (int, error) {
	if r.Store == nil {
		return 0, errors.New("sessions: reconcile: no Store")
	}
	entries := r.snapshot()
	if len(entries) == 0 {
		return 0, nil
	}
	index := make(map[store.SessionRef]int)
	var refs []store.SessionRef
	for _, e := range entries {
		ref := e.s.ref()
		if _, ok := index[ref]; !ok {
			index[ref] = len(refs)
			refs = append(refs, ref)
		}
	}
	started := time.Now()
	states, err := r.Store.CheckSessions(ctx, refs)
	if err != nil {
		return 0, fmt.Errorf("sessions: reconcile: %w", err)
	}
	now := r.now()
	reasons := make(map[*entry]authn.Result)
	var stale, live []*entry
	for _, e := range entries {
		if res := r.revalidate(e, states[index[e.s.ref()]], now); res != authn.OK {
			stale = append(stale, e)
			reasons[e] = res
		} else {
			live = append(live, e)
		}
	}
	for e, res := range r.directoryRefusals(ctx, live) {
		stale = append(stale, e)
		reasons[e] = res
	}
	taken := r.take(stale...)
	r.endTaken("reconcile", taken)
	for _, e := range taken {
		r.logEnded(e, string(reasons[e]), "reconcile")
	}
	r.log().Debug("sessions reconciled", "sessions", len(entries), "credentials", len(refs),
		"ended", len(taken), "took", time.Since(started))
	return len(taken), nil
}

// directoryRefusals returns the entries whose accounts the Directory
// refuses, with its reason.
func (r *Registry) directoryRefusals(ctx context.Context, entries []*entry) map[*entry]authn.Result {
	if r.Directory == nil || len(entries) == 0 {
		return nil
	}
	var users []string
	seen := make(map[string]bool)
	for _, e := range entries {
		if u := e.s.Login.Username; !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	refused := r.Directory.DirectoryRefusals(ctx, users)
	out := make(map[*entry]authn.Result)
	for _, e := range entries {
		if res, ok := refused[e.s.Login.Username]; ok {
			out[e] = res
		}
	}
	return out
}

// Watch subscribes to the store's events and returns once subscribed (so
// that no event published after it returns is missed). Until ctx is done
// it then, in its own goroutines: ends the sessions each event concerns
// and drops the cached logins it concerns; on store.EventsLost, clears the
// cache and reconciles; and reconciles every RecheckInterval (retrying
// failures sooner). The returned channel is closed when those goroutines
// have ended: after ctx is done, or if the subscription ends by itself
// (the store was closed), which is logged as an error.
func (r *Registry) Watch(ctx context.Context) (<-chan struct{}, error) {
	if r.Store == nil {
		return nil, errors.New("sessions: watch: no Store")
	}
	events, err := r.Store.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("sessions: watch: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		r.follow(ctx, events, kick)
	})
	wg.Go(func() { r.reconcileLoop(ctx, kick) })
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done, nil
}

// follow handles events until the channel closes.
func (r *Registry) follow(ctx context.Context, events <-chan store.Event, kick chan<- struct{}) {
	for ev := range events {
		if ev.Kind == store.EventsLost {
			r.log().Warn("revocation events may have been lost: reconciling every session with the store")
			if r.Cache != nil {
				r.Cache.Clear()
			}
			select {
			case kick <- struct{}{}:
			default: // a reconcile is already due
			}
			continue
		}
		// The cache first: a client whose session is ended reconnects at
		// once, and must not find its revoked login cached.
		if r.Cache != nil {
			r.Cache.Drop(ev)
		}
		r.End(ev)
	}
	if ctx.Err() == nil {
		r.log().Error("revocation events: the subscription ended; sessions are no longer watched")
	}
}

// reconcileLoop runs Reconcile when kicked and every interval until ctx is
// done. A kick during a Reconcile runs another one after it: the loss may
// have come after the store read.
func (r *Registry) reconcileLoop(ctx context.Context, kick <-chan struct{}) {
	interval := r.interval()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-kick:
		case <-retry:
		}
		retry = nil
		if _, err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			wait := min(retryAfter, interval)
			r.log().Warn("reconciling sessions with the store failed; retrying", "in", wait, "err", err)
			retry = time.After(wait)
		}
	}
}
