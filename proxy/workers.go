package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the idle connection goroutines a Lifecycle keeps.
const (
	maxIdleWorkers = 64
	workerIdle     = time.Second
)

// workers runs each connection on a goroutine that ran an earlier one when
// one is idle. A new goroutine starts with a 2 KiB stack and a login
// (authn's JSON store reads, the upstream login) grows it to 32 KiB in
// four copies, about a tenth of passgate's CPU per warm login; a reused
// goroutine keeps its grown stack (the GC halves what stays unused).
// At most maxIdleWorkers wait, each for workerIdle, and all leave when
// the Lifecycle stops. The zero value starts a goroutine per call until
// init.
type workers struct {
	jobs     chan func() // unbuffered: a send succeeds only to a waiting worker
	idle     atomic.Int32
	done     chan struct{}
	stopOnce sync.Once
}

// init makes w ready to reuse goroutines; the Lifecycle's mu is held.
func (w *workers) init() {
	if w.jobs == nil {
		w.jobs = make(chan func())
		w.done = make(chan struct{})
	}
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	if w.jobs != nil {
		select {
		case w.jobs <- f:
			return
		default:
		}
	}
	go w.work(f)
}

// stop makes the idle workers leave, and the busy ones when they finish.
func (w *workers) stop() {
	if w.done != nil {
		w.stopOnce.Do(func() { close(w.done) })
	}
}

// becomeIdle counts one more idle worker, unless maxIdleWorkers are idle
// already: the count never goes past the bound, not even for a moment
// (an add-then-undo would let a reader see maxIdleWorkers+1).
func (w *workers) becomeIdle() bool {
	for {
		n := w.idle.Load()
		if n >= maxIdleWorkers {
			return false
		}
		if w.idle.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (w *workers) work(f func()) {
	var t *time.Timer
	for {
		f()
		f = nil
		if w.jobs == nil || !w.becomeIdle() {
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case f = <-w.jobs:
			w.idle.Add(-1)
		case <-t.C:
			w.idle.Add(-1)
			return
		case <-w.done:
			w.idle.Add(-1)
			t.Stop()
			return
		}
	}
}
