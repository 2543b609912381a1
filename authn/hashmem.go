package authn

import (
	"runtime/debug"
	"sync"
	"time"
)

// releaseGap is the least time between two returns of memory to the OS.
const releaseGap = time.Second

// hashMemory returns argon2id's blocks (19 MiB per hash with DefaultParams)
// to the OS once hashing goes quiet. Without it the Go runtime keeps a
// burst's peak as idle heap and gives it back only slowly, so a burst of 50
// cold logins left passgate's RSS near a GiB for minutes (issue 13). It is
// process-wide because the heap is.
var hashMemory = &memReleaser{free: debug.FreeOSMemory, now: time.Now, afterFunc: afterFunc}

func afterFunc(d time.Duration, f func()) { time.AfterFunc(d, f) }

// Busy notes work that leaves much garbage behind (a login: its hash, its
// TLS handshake, its upstream login); the returned func notes its end.
// When no such work is left, memory is returned to the OS as after a burst
// of hashes, so that a server idling after a burst of logins holds what its
// sessions use, not the garbage of their logins (at the price of one
// forced GC, at most once a second, when logins are sparse).
func Busy() (done func()) { return hashMemory.begin() }

// memReleaser counts hashes in progress and, when the last one ends, runs
// free (a GC that returns free memory to the OS) in its own goroutine, at
// most once per releaseGap: a release due sooner is deferred to the end of
// the gap, so the end of every burst is followed by one.
type memReleaser struct {
	free      func()
	now       func() time.Time
	afterFunc func(time.Duration, func())

	mu       sync.Mutex
	running  int
	last     time.Time // the last release started
	deferred bool      // a release is scheduled for the end of the gap
}

// begin notes a hash starting; the returned func notes its end.
func (r *memReleaser) begin() (end func()) {
	r.mu.Lock()
	r.running++
	r.mu.Unlock()
	return r.end
}

func (r *memReleaser) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
	if r.running > 0 || r.deferred {
		return
	}
	if wait := releaseGap - r.now().Sub(r.last); wait > 0 {
		r.deferred = true
		r.afterFunc(wait, r.deferredRelease)
		return
	}
	r.startRelease()
}

// deferredRelease runs a release put off to the end of the gap, unless
// hashing started again (its end will release).
func (r *memReleaser) deferredRelease() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deferred = false
	if r.running == 0 {
		r.startRelease()
	}
}

// startRelease runs free in its own goroutine; r.mu is held.
func (r *memReleaser) startRelease() {
	r.last = r.now()
	go r.free()
}
