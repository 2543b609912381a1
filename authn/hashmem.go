package authn

import (
	"runtime/debug"
	"sync"
	"time"
)

// releaseGap is how long busy work must have been quiet before memory is
// returned to the OS.
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
// forced GC a second after the last login of a burst; under a steady
// stream of logins there is none).
func Busy() (done func()) { return hashMemory.begin() }

// memReleaser counts hashes in progress and, once none has run for
// releaseGap, runs free (a GC that returns free memory to the OS) in its own
// goroutine: one release after each burst, and none while work keeps
// coming (the runtime's own GCs keep a busy heap in check; a forced one
// each second would only add to them).
type memReleaser struct {
	free      func()
	now       func() time.Time
	afterFunc func(time.Duration, func())

	mu       sync.Mutex
	running  int
	lastEnd  time.Time // when the last hash ended
	deferred bool      // a check is scheduled
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
	if r.running > 0 {
		return
	}
	r.lastEnd = r.now()
	if !r.deferred {
		r.deferred = true
		r.afterFunc(releaseGap, r.check)
	}
}

// check releases if no hash ran for releaseGap, and otherwise waits for
// the rest of the gap; a hash running now schedules the next check when
// it ends.
func (r *memReleaser) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running > 0 {
		r.deferred = false
		return
	}
	if wait := releaseGap - r.now().Sub(r.lastEnd); wait > 0 {
		r.afterFunc(wait, r.check)
		return
	}
	r.deferred = false
	go r.free()
}
