package authn

import (
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// fakeReleaser is a memReleaser on a fake clock that counts releases and
// keeps the release it was asked to defer.
type fakeReleaser struct {
	*memReleaser
	clock    time.Time
	released chan struct{}
	deferred []func()
	waits    []time.Duration
}

func newFakeReleaser() *fakeReleaser {
	f := &fakeReleaser{clock: time.Unix(1000, 0), released: make(chan struct{}, 10)}
	f.memReleaser = &memReleaser{
		free: func() { f.released <- struct{}{} },
		now:  func() time.Time { return f.clock },
		afterFunc: func(d time.Duration, fn func()) {
			f.waits = append(f.waits, d)
			f.deferred = append(f.deferred, fn)
		},
	}
	return f
}

// releases waits for the releases started so far to run and counts them.
func (f *fakeReleaser) releases(t *testing.T, want int) {
	t.Helper()
	for range want {
		select {
		case <-f.released:
		case <-time.After(time.Minute):
			t.Fatalf("fewer than %d releases", want)
		}
	}
	select {
	case <-f.released:
		t.Fatalf("more than %d releases", want)
	default:
	}
}

// fire runs the checks scheduled so far, as their timers would, after
// moving the clock by the first one's wait.
func (f *fakeReleaser) fire() {
	fns := f.deferred
	f.deferred = nil
	f.clock = f.clock.Add(f.waits[0])
	f.waits = nil
	for _, fn := range fns {
		fn()
	}
}

// TestMemReleaserOncePerBurst: the memory of a burst of hashes is returned
// once, releaseGap after the last hash of the burst.
func TestMemReleaserOncePerBurst(t *testing.T) {
	f := newFakeReleaser()
	ends := []func(){f.begin(), f.begin(), f.begin()}
	ends[0]()
	ends[1]()
	if len(f.deferred) != 0 {
		t.Fatal("a check was scheduled while a hash still runs")
	}
	ends[2]()
	f.releases(t, 0)
	if len(f.deferred) != 1 || f.waits[0] != releaseGap {
		t.Fatalf("scheduled %d checks, waits %v; want one after %v", len(f.deferred), f.waits, releaseGap)
	}
	f.fire()
	f.releases(t, 1)
	if len(f.deferred) != 0 {
		t.Fatalf("%d checks scheduled after the release", len(f.deferred))
	}
}

// TestMemReleaserNoneUnderSteadyLogins: logins that keep coming (each
// ending before the next begins, as with a steady stream at low
// concurrency) force no GC; the release comes once they stop.
func TestMemReleaserNoneUnderSteadyLogins(t *testing.T) {
	f := newFakeReleaser()
	for range 10 {
		// A second's worth of logins, 10 ms apart, then the check.
		for range 100 {
			f.begin()()
			f.clock = f.clock.Add(10 * time.Millisecond)
		}
		if len(f.deferred) != 1 {
			t.Fatalf("%d checks scheduled, want 1", len(f.deferred))
		}
		fns := f.deferred
		f.deferred, f.waits = nil, nil
		fns[0]()
		f.releases(t, 0)
	}
	// The stream stopped: the check that was put off releases.
	if len(f.deferred) != 1 || f.waits[0] <= 0 || f.waits[0] > releaseGap {
		t.Fatalf("scheduled %d checks, waits %v", len(f.deferred), f.waits)
	}
	f.fire()
	f.releases(t, 1)
}

// TestMemReleaserWaitsForRunningHash: a check that finds a hash running
// does nothing; that hash's end schedules the next.
func TestMemReleaserWaitsForRunningHash(t *testing.T) {
	f := newFakeReleaser()
	f.begin()()
	end := f.begin()
	f.fire()
	f.releases(t, 0)
	end()
	f.fire()
	f.releases(t, 1)
}

// TestHashBurstMemoryReturned: after a burst of concurrent argon2id
// verifications, the heap they used is returned to the OS instead of kept
// as idle heap (what RSS counts).
func TestHashBurstMemoryReturned(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 4 × 19 MiB")
	}
	released := make(chan struct{}, 100)
	hashMemory.mu.Lock()
	free := hashMemory.free
	hashMemory.free = func() { debug.FreeOSMemory(); released <- struct{}{} }
	hashMemory.mu.Unlock()
	t.Cleanup(func() {
		hashMemory.mu.Lock()
		hashMemory.free = free
		hashMemory.mu.Unlock()
	})
	phc, err := DefaultParams.Hash([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	<-released // the Hash's own release
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if ok, err := VerifyHash(phc, []byte("secret")); !ok || err != nil {
				t.Errorf("VerifyHash = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	<-released // one release for the burst (at most a second later)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	kept := m.HeapIdle - m.HeapReleased
	t.Logf("after 4 concurrent verifications: %d MiB of idle heap kept, %d MiB in use", kept>>20, m.HeapInuse>>20)
	if kept >= uint64(DefaultParams.MemoryKiB)<<10 {
		t.Errorf("%d MiB of idle heap kept after the burst, want less than one hash's %d MiB", kept>>20, DefaultParams.MemoryKiB>>10)
	}
}
