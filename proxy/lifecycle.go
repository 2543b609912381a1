package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Handle is how a Lifecycle reaches one connection of a front-end.
type Handle interface {
	// Interrupt ends the connection's pre-auth phase (Shutdown): a blocked
	// read returns at once; a relayed session is left alone.
	Interrupt()
	// Close closes the connection's sockets, a relayed upstream included.
	Close()
}

// ShutdownNotifier is implemented by a Handle that has something to say to
// its client when Shutdown's grace period ends, before Close closes it
// (proxy/imap: "* BYE" to a relayed client). ShutdownExpired must return
// within a bounded time; those of all live handles run at once.
type ShutdownNotifier interface {
	ShutdownExpired()
}

// Lifecycle is the net/http-style lifecycle of a hand-written front-end
// (proxy/imap, proxy/pop3, proxy/sieve): the accept loop, the set of live connections,
// Shutdown and Close. The zero value is ready; Name prefixes its errors.
type Lifecycle struct {
	Name string

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[Handle]bool // true: detached (see Detach)
	shutdown  bool
	wg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc

	workers workers
}

// Serve accepts connections on ln until Shutdown or Close (then it returns
// ErrServerClosed). For each one, accept returns its Handle and the function
// that runs it to its end; run gets a context that Close cancels. A failed
// Accept (EMFILE...) is retried with a growing pause, like net/http.
func (l *Lifecycle) Serve(ln net.Listener, log *slog.Logger, accept func(net.Conn) (Handle, func(context.Context))) error {
	if !l.trackListener(ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer l.trackListener(ln, false)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if l.closing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("%s: accept: %w", l.Name, err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn(l.Name+" accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		h, run := accept(nc)
		ctx, ok := l.track(h)
		if !ok {
			nc.Close()
			return ErrServerClosed
		}
		l.workers.run(func() {
			defer l.untrackAttached(h)
			run(ctx)
		})
	}
}

// Shutdown stops accepting, interrupts the connections still before login
// and waits for all to end until ctx is done; then it lets each live
// ShutdownNotifier speak, closes what is left and returns ctx's error.
func (l *Lifecycle) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.shutdown = true
	l.workers.stop()
	for ln := range l.listeners {
		ln.Close()
	}
	for h := range l.conns {
		h.Interrupt()
	}
	l.mu.Unlock()
	if err := Wait(ctx, &l.wg); err != nil {
		l.notifyShutdown()
		l.Close()
		return fmt.Errorf("%s: shutdown: %w", l.Name, err)
	}
	return nil
}

// notifyShutdown runs ShutdownExpired of every live handle that has one,
// at once, and waits for all.
func (l *Lifecycle) notifyShutdown() {
	var notifiers []ShutdownNotifier
	l.mu.Lock()
	for h := range l.conns {
		if n, ok := h.(ShutdownNotifier); ok {
			notifiers = append(notifiers, n)
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range notifiers {
		wg.Go(n.ShutdownExpired)
	}
	wg.Wait()
}

// Wait waits until every connection goroutine has ended.
func (l *Lifecycle) Wait() { l.wg.Wait() }

// Close stops accepting and closes every connection at once, relayed
// sessions included. It does not wait for them.
func (l *Lifecycle) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shutdown = true
	l.workers.stop()
	if l.cancel != nil {
		l.cancel()
	}
	var errs []error
	for ln := range l.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for h := range l.conns {
		h.Close()
	}
	return errors.Join(errs...)
}

// Context is the context every connection derives from; Close cancels it.
func (l *Lifecycle) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.baseContext()
}

func (l *Lifecycle) baseContext() context.Context {
	if l.ctx == nil {
		l.ctx, l.cancel = context.WithCancel(context.Background())
	}
	return l.ctx
}

func (l *Lifecycle) closing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shutdown
}

func (l *Lifecycle) trackListener(ln net.Listener, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.listeners, ln)
		return true
	}
	if l.shutdown {
		return false
	}
	if l.listeners == nil {
		l.listeners = make(map[net.Listener]struct{})
		l.workers.init()
	}
	l.listeners[ln] = struct{}{}
	return true
}

func (l *Lifecycle) track(h Handle) (context.Context, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown {
		return nil, false
	}
	if l.conns == nil {
		l.conns = make(map[Handle]bool)
	}
	l.conns[h] = false
	l.wg.Add(1)
	return l.baseContext(), true
}

// Detach lets the run function of h return while h lives on without a
// goroutine (a parked relay, see SpliceAsync): h stays live for Shutdown,
// Close and Wait until the returned function is called when it ends (a
// second call does nothing).
func (l *Lifecycle) Detach(h Handle) (ended func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[h] = true
	return func() { l.untrackDetached(h) }
}

// untrackDetached untracks h, detached, the first time it is called: a
// closure over it costs a parked session less than a sync.OnceFunc.
func (l *Lifecycle) untrackDetached(h Handle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if detached, live := l.conns[h]; live && detached {
		delete(l.conns, h)
		l.wg.Done()
	}
}

// untrackAttached untracks h when its run function returns, unless it
// was detached.
func (l *Lifecycle) untrackAttached(h Handle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if detached, live := l.conns[h]; live && !detached {
		delete(l.conns, h)
		l.wg.Done()
	}
}
