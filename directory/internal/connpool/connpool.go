// Package connpool keeps the connections of a directory client: a bounded
// number of requests in flight, idle connections reused, a broken one
// replaced, and a request ended by closing its connection when the caller's
// context ends (the protocol libraries take no context).
package connpool

import (
	"context"
	"io"
)

// Conn is what the pool holds.
type Conn interface {
	io.Closer
}

// Pool lends connections of type C. Each connection belongs to one caller
// between the start and the end of Run's fn.
type Pool[C Conn] struct {
	// Dial makes a new connection, ready for requests (TLS, handshake,
	// service bind done), within ctx.
	Dial func(ctx context.Context) (C, error)
	// Healthy reports whether a connection whose request returned err may
	// serve the next request (err was an answer of the server, not a
	// failure of the connection). Nil: only a nil err.
	Healthy func(err error) bool

	slots chan struct{}
	idle  chan C
}

// New returns a pool that runs at most size requests at once and keeps at
// most size idle connections.
func New[C Conn](size int, dial func(ctx context.Context) (C, error), healthy func(err error) bool) *Pool[C] {
	return &Pool[C]{Dial: dial, Healthy: healthy, slots: make(chan struct{}, size), idle: make(chan C, size)}
}

// Run calls fn with a connection. A connection whose request failed (not
// Healthy) is closed instead of kept; if it was an idle one (the server may
// have closed it meanwhile) fn runs once more on a new connection, so fn
// must be safe to repeat when its first run failed that way. If ctx ends
// first, the connection is closed, which ends the request, and Run returns
// ctx.Err().
func (p *Pool[C]) Run(ctx context.Context, fn func(c C) error) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = WithContext(ctx, c, func() error { return fn(c) })
		if err == nil || (ctx.Err() == nil && p.Healthy != nil && p.Healthy(err)) {
			p.put(c)
			return err
		}
		c.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !reused || attempt > 0 {
			return err
		}
	}
}

// get returns an idle connection (reused) or a new one.
func (p *Pool[C]) get(ctx context.Context) (c C, reused bool, err error) {
	select {
	case c := <-p.idle:
		return c, true, nil
	default:
	}
	c, err = p.Dial(ctx)
	if err != nil && ctx.Err() != nil {
		return c, false, ctx.Err()
	}
	return c, false, err
}

func (p *Pool[C]) put(c C) {
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// Close closes the idle connections. Connections in use are closed when
// they come back only if the pool is full; Close is for shutdown.
func (p *Pool[C]) Close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// WithContext runs fn, closing c if ctx ends first, and then returns
// ctx.Err() instead of fn's error.
func WithContext(ctx context.Context, c io.Closer, fn func() error) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := fn()
	if !stop() {
		return ctx.Err()
	}
	return err
}
