package proxy

import (
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/passgate/passgate/internal/testleak"
)

// After a burst of connections at most maxIdleWorkers goroutines wait for
// the next one, and none is left once the Lifecycle stops.
func TestWorkersBoundedAndStopped(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var w workers
	w.init()
	release := make(chan struct{})
	var started, ended sync.WaitGroup
	const burst = 3 * maxIdleWorkers
	for range burst {
		started.Add(1)
		ended.Add(1)
		w.run(func() {
			defer ended.Done()
			started.Done()
			<-release
		})
	}
	started.Wait()
	close(release)
	ended.Wait()
	if n := w.idle.Load(); n > maxIdleWorkers {
		t.Errorf("%d idle workers after a burst of %d, want at most %d", n, burst, maxIdleWorkers)
	}
	// Sequential connections reuse the idle goroutines.
	for range 10 {
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
	}
	w.stop()
	if err := testleak.Find(before); err != nil {
		t.Errorf("workers left after stop: %v", err)
	}
}
