package upstream

import (
	"context"
	"sync"
	"time"
)

// DefaultPool is the pool size the configuration file gives an IMAP
// upstream (Config.Pool; the package's own default is none).
const DefaultPool = 4

// DefaultPoolMaxAge is how long a pooled connection may wait for a login
// when Config.PoolMaxAge is zero: well below the pre-login timeouts of
// common servers (Dovecot: 180 s; RFC 3501 §5.4 asks for at least 30
// minutes after login, and servers allow a minute or more before it).
const DefaultPoolMaxAge = 30 * time.Second

// pool keeps up to size IMAP connections that have read the greeting and
// finished TLS or STARTTLS, so that a login costs its own round trips only
// (Config.Pool). It fills on demand: every take starts background dials
// for the missing connections, and connections older than maxAge are
// closed and replaced only while logins keep coming; with no logins the
// pool empties after maxAge and dials nothing.
//
// A pooled connection carries nothing of any client: it is dialled without
// a PROXY header (a Config with SendProxy gets no pool) and everything
// per client (ID, the login) is sent after it is taken.
type pool struct {
	size    int
	maxAge  time.Duration
	connect func(context.Context) (*wire, error) // dial, greeting, STARTTLS
	now     func() time.Time

	ctx    context.Context // ends the dials in flight on close
	cancel context.CancelFunc
	fills  sync.WaitGroup

	mu       sync.Mutex
	idle     []pooled // oldest first
	filling  int
	lastTake time.Time
	pauseEnd time.Time   // no dials before: one failed (fillPause)
	timer    *time.Timer // closes expired connections; nil when idle is empty
	closed   bool
}

// pooled is one ready connection and when it became ready.
type pooled struct {
	w    *wire
	born time.Time
}

func newPool(size int, maxAge time.Duration, connect func(context.Context) (*wire, error)) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{size: size, maxAge: maxAge, connect: connect, now: time.Now, ctx: ctx, cancel: cancel}
}

// take returns a ready connection bound to ctx with the login deadline,
// or nil when the pool has none (the caller dials). Connections the
// upstream closed or wrote to meanwhile are dropped on the way.
func (p *pool) take(ctx context.Context, deadline time.Time) *wire {
	if p == nil {
		return nil
	}
	for {
		w := p.pop()
		if w == nil {
			return nil
		}
		if w.adopt(ctx, deadline) {
			return w
		}
	}
}

// pop removes the oldest unexpired connection and starts the dials that
// bring the pool back to size.
func (p *pool) pop() *wire {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.lastTake = p.now()
	p.expireLocked()
	var w *wire
	if len(p.idle) > 0 {
		w = p.idle[0].w
		p.idle[0] = pooled{}
		p.idle = p.idle[1:]
	}
	p.refillLocked()
	return w
}

// fillPause is how long the pool dials nothing after a dial failed: an
// upstream that is down sees each login's own dial, not size more.
const fillPause = time.Second

// refillLocked starts one dial per missing connection.
func (p *pool) refillLocked() {
	if p.now().Before(p.pauseEnd) {
		return
	}
	for ; len(p.idle)+p.filling < p.size; p.filling++ {
		p.fills.Add(1)
		go p.fill()
	}
}

// fill dials one connection into the pool.
func (p *pool) fill() {
	defer p.fills.Done()
	w, err := p.connect(p.ctx)
	if err == nil {
		w.link.park()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filling--
	if err != nil {
		// Logins dial themselves (and report the failure) meanwhile.
		p.pauseEnd = p.now().Add(fillPause)
		return
	}
	if p.closed {
		w.close()
		return
	}
	p.idle = append(p.idle, pooled{w: w, born: p.now()})
	if p.timer == nil {
		p.timer = time.AfterFunc(p.maxAge, p.prune)
	}
}

// prune closes expired connections, replaces them if logins came within
// maxAge, and runs again when the oldest left expires.
func (p *pool) prune() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed {
		return
	}
	p.expireLocked()
	if p.now().Sub(p.lastTake) < p.maxAge {
		p.refillLocked()
	}
	if len(p.idle) > 0 {
		p.timer = time.AfterFunc(p.idle[0].born.Add(p.maxAge).Sub(p.now()), p.prune)
	}
}

// expireLocked closes the connections older than maxAge.
func (p *pool) expireLocked() {
	now := p.now()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].born) >= p.maxAge {
		p.idle[n].w.close()
		p.idle[n] = pooled{}
		n++
	}
	p.idle = p.idle[n:]
}

// close closes every pooled connection, ends the dials in flight and
// waits for them. Takes afterwards find nothing.
func (p *pool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range idle {
		c.w.close()
	}
	p.fills.Wait()
}

// len is the number of ready connections.
func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// park lifts the deadline of a connection that waits in the pool and
// unties it from the context it was dialled with.
func (l *link) park() {
	l.stop()
	l.raw.limitTo(time.Time{})
}

// adopt binds a pooled connection to a login: ctx and the login deadline.
// It reports false, and closes the connection, if the upstream closed it
// or sent anything while it waited (a BYE before its timeout).
func (w *wire) adopt(ctx context.Context, deadline time.Time) bool {
	l := w.link
	if w.br.Buffered() > 0 || !idle(l.raw.Conn) {
		l.raw.Close()
		return false
	}
	l.ctx = ctx
	l.raw.limitTo(deadline)
	l.stop = context.AfterFunc(ctx, func() { l.raw.limitTo(time.Unix(1, 0)) })
	return true
}
