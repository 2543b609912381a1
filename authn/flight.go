package authn

import "sync"

// flights lets concurrent attempts with the same flight key share one
// decision, as singleflight does, but the leader decides on its own
// goroutine: singleflight.Do cannot tell a joining attempt apart before it
// waits (Guard.inFlight), and DoChan starts a goroutine per login, whose
// stack then grows through the whole decision (store reads, limits), a
// few per cent of a warm login's CPU.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one decision in progress; o and err are set before done is
// closed.
type flight struct {
	done chan struct{}
	o    outcome
	err  error
}

// join returns the flight of key, and whether the caller leads it: the
// leader must call land once it has decided; the others wait on done.
func (fs *flights) join(key string) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f = &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// land records the leader's decision, ends the flight (attempts that
// come later start a new one) and wakes the attempts that joined it.
func (fs *flights) land(key string, f *flight, o outcome, err error) {
	fs.mu.Lock()
	delete(fs.m, key)
	fs.mu.Unlock()
	f.o, f.err = o, err
	close(f.done)
}
