package bolt

import (
	"context"
	"fmt"

	"github.com/passgate/passgate/store"
)

// EventBuffer is the capacity of each Subscribe channel. A subscriber that
// falls further behind misses events and gets store.EventsLost after the
// last one it received (drops are logged as a warning): writers never wait
// for readers.
const EventBuffer = 256

// subscriber is one Subscribe channel and the stop function of the
// context.AfterFunc that unsubscribes it.
type subscriber struct {
	ch   chan store.Event
	stop func() bool
}

// Subscribe delivers every Event published after the call until ctx is done
// or db is closed; the channel is then closed. See EventBuffer.
func (db *DB) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: subscribe: %w", err)
	}
	sub := &subscriber{ch: make(chan store.Event, EventBuffer)}
	db.subMu.Lock()
	defer db.subMu.Unlock()
	if db.closed {
		return nil, fmt.Errorf("bolt: subscribe: %w: database closed", store.ErrUnavailable)
	}
	db.subs[sub] = struct{}{}
	sub.stop = context.AfterFunc(ctx, func() { db.unsubscribe(sub) })
	return sub.ch, nil
}

// unsubscribe removes sub and closes its channel, unless Close did already.
func (db *DB) unsubscribe(sub *subscriber) {
	db.subMu.Lock()
	defer db.subMu.Unlock()
	if _, ok := db.subs[sub]; ok {
		delete(db.subs, sub)
		close(sub.ch)
	}
}

// publish hands evs to every subscriber without blocking. It must be called
// only after the transaction that made the change committed. An event that
// does not fit a subscriber's buffer is replaced by store.EventsLost (see
// store.SendEvent), so that the subscriber reconciles.
func (db *DB) publish(evs ...store.Event) {
	if len(evs) == 0 {
		return
	}
	dropped := 0
	db.subMu.Lock()
	for _, ev := range evs {
		for sub := range db.subs {
			if !store.SendEvent(sub.ch, ev) {
				dropped++
			}
		}
	}
	db.subMu.Unlock()
	if dropped > 0 {
		db.log.Warn("bolt: events dropped: subscriber buffer full; subscribers told to reconcile",
			"dropped", dropped, "published", len(evs))
	}
}
