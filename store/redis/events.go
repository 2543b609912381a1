package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

// EventBuffer is the capacity of each Subscribe channel. A subscriber that
// falls further behind misses events and gets store.EventsLost after the
// last one it received (drops are logged as a warning): the subscription
// never waits for its reader.
const EventBuffer = 256

// subscription is one Subscribe call: its go-redis PubSub (one connection
// per subscription) and the channel it feeds.
type subscription struct {
	ps       *goredis.PubSub // replaced after a Sentinel switch; guarded by Store.subMu
	out      chan store.Event
	switched chan struct{} // a Sentinel master switch happened (buffer 1)
}

// Subscribe delivers every Event published after the call, by any Store on
// the same Redis and key prefix, until ctx is done or s is closed; the
// channel is then closed. It returns once Redis confirmed the
// subscription (in Cluster mode, once events published before the call
// on any node have drained: see barrier). If the connection breaks,
// go-redis reconnects and subscribes again by itself; after a Sentinel
// master switch, the Store subscribes again on the new master (see
// watchSentinels). Events published in between are lost, which is logged
// and reported on the channel as store.EventsLost. See EventBuffer.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: subscribe: %w", err)
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("redis: subscribe: %w: store closed", store.ErrUnavailable)
	}
	ps, in, err := s.pubSub(ctx)
	if err != nil {
		return nil, err
	}
	sub := &subscription{ps: ps, out: make(chan store.Event, EventBuffer), switched: make(chan struct{}, 1)}
	s.subs[sub] = struct{}{}
	s.subWG.Add(1)
	go s.forward(ctx, sub, in)
	return sub.out, nil
}

// pubSub subscribes to the events channel, waits for Redis to confirm,
// and returns the PubSub and its message channel.
func (s *Store) pubSub(ctx context.Context) (*goredis.PubSub, <-chan any, error) {
	var ps *goredis.PubSub
	err := s.do(ctx, "subscribe", func(ctx context.Context) error {
		ps = s.rdb.Subscribe(ctx, s.channel())
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		if _, ok := msg.(*goredis.Subscription); !ok {
			return fmt.Errorf("unexpected reply %T to SUBSCRIBE", msg)
		}
		if cl, ok := s.rdb.(*goredis.ClusterClient); ok {
			return s.barrier(ctx, cl, ps)
		}
		return nil
	})
	if err != nil {
		if ps != nil {
			ps.Close()
		}
		return nil, nil, err
	}
	return ps, ps.ChannelWithSubscriptions(
		goredis.WithChannelSize(EventBuffer),
		goredis.WithChannelHealthCheckInterval(s.timeout),
		goredis.WithChannelPingTimeout(s.timeout),
		goredis.WithChannelReconnectTimeout(s.timeout),
	), nil
}

// barrierMsg is published to the events channel by a Subscribe in Cluster
// mode; it is not an event, and subscribers ignore it.
type barrierMsg struct {
	Barrier string `json:"barrier"`
}

// barrier makes a Cluster subscription start clean. A PUBLISH reaches the
// other nodes over the cluster bus asynchronously, so an event published
// on another node before Subscribe could still arrive after the
// subscription was confirmed. The bus link between two nodes is FIFO, so
// barrier publishes a unique message on every master and discards what
// arrives until each one's barrier did.
func (s *Store) barrier(ctx context.Context, cl *goredis.ClusterClient, ps *goredis.PubSub) error {
	token := make([]byte, 16)
	rand.Read(token) // never fails (crypto/rand, Go 1.24+)
	msg, err := json.Marshal(barrierMsg{Barrier: hex.EncodeToString(token)})
	if err != nil {
		return err
	}
	var masters atomic.Int64
	err = cl.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		masters.Add(1)
		return c.Publish(ctx, s.channel(), msg).Err()
	})
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	for seen := int64(0); seen < masters.Load(); {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		if m.Payload == string(msg) {
			seen++
		}
	}
	return nil
}

// forward copies messages from in to sub.out until ctx is done or the
// PubSub is closed (by Close), then closes sub.out. After a Sentinel
// switch it moves the subscription to the new master, retrying every
// Timeout until that works.
func (s *Store) forward(ctx context.Context, sub *subscription, in <-chan any) {
	defer s.subWG.Done()
	defer close(sub.out)
	done := ctx.Done()
	var retry <-chan time.Time
	for {
		select {
		case <-done:
			done, retry = nil, nil
			s.subMu.Lock()
			delete(s.subs, sub)
			s.subMu.Unlock()
			sub.ps.Close() // in is closed next
		case <-sub.switched:
			retry = s.resubscribe(ctx, sub, &in)
		case <-retry:
			retry = s.resubscribe(ctx, sub, &in)
		case msg, ok := <-in:
			if !ok {
				return
			}
			if done != nil {
				s.handle(sub, msg)
			}
		}
	}
}

// resubscribe replaces sub's PubSub by a new one (which go-redis connects
// to the current master) and *in by its channel. It returns a timer
// channel for the next attempt if it failed, nil if it worked.
func (s *Store) resubscribe(ctx context.Context, sub *subscription, in *<-chan any) <-chan time.Time {
	if ctx.Err() != nil {
		return nil
	}
	ps, nin, err := s.pubSub(ctx)
	if err != nil {
		s.log.Warn("redis: event subscription: moving to the new master failed; retrying", "error", err)
		return time.After(s.timeout)
	}
	s.subMu.Lock()
	old, oldIn := sub.ps, *in
	sub.ps, *in = ps, nin
	if s.closed {
		ps.Close()
	}
	s.subMu.Unlock()
	old.Close()
	s.subWG.Add(1)
	go func() { // let go-redis's goroutine of the old PubSub finish
		defer s.subWG.Done()
		for range oldIn {
		}
	}()
	s.eventsLost(sub, "the Redis master changed")
	return nil
}

// eventsLost logs that a subscription missed events and tells its reader
// with store.EventsLost. Only sub's forward goroutine may call it.
func (s *Store) eventsLost(sub *subscription, why string) {
	s.log.Warn("redis: event subscription re-established: events published meanwhile were lost", "reason", why)
	store.SendLost(sub.out)
}

// handle delivers one message without blocking.
func (s *Store) handle(sub *subscription, msg any) {
	switch m := msg.(type) {
	case *goredis.Subscription:
		if m.Kind != "subscribe" {
			return
		}
		s.eventsLost(sub, "the connection broke and go-redis subscribed again")
	case *goredis.Message:
		var b barrierMsg
		if json.Unmarshal([]byte(m.Payload), &b) == nil && b.Barrier != "" {
			return // another Subscribe's barrier
		}
		var ev store.Event
		if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil || ev.Kind == "" || ev.Username == "" {
			s.log.Warn("redis: ignoring a malformed event", "channel", m.Channel, "error", err)
			return
		}
		if !store.SendEvent(sub.out, ev) {
			s.log.Warn("redis: event dropped: subscriber buffer full; subscriber told to reconcile",
				"kind", ev.Kind, "username", ev.Username, "app_password_id", ev.AppPasswordID)
		}
	}
}
