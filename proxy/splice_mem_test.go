package proxy

import (
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// wrappedConn hides *net.TCPConn, as the IMAP relay's byeConn does, so
// that Splice copies through user space.
type wrappedConn struct{ net.Conn }

// TestSpliceIdleMemory measures what 1000 parked sessions cost beyond their
// sockets: each relays one short line each way (so both copy loops have
// run, as after an IMAP login) and then waits. It logs heap and stack bytes
// per session; it asserts only that the sessions relayed.
func TestSpliceIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4000 sockets")
	}
	const k = 1000
	type pair struct{ client, upstream net.Conn }
	pairs := make([]pair, k)
	legsOf := make([][2]Leg, k)
	for i := range pairs {
		ca, pc, pu, ua := legs(t)
		pairs[i] = pair{ca, ua}
		legsOf[i] = [2]Leg{{Conn: wrappedConn{pc}}, {Conn: pu}}
	}
	before := memNow()
	sessions := make([]*session, k)
	for i, p := range pairs {
		sessions[i] = start(t, p.client, legsOf[i][0], legsOf[i][1], p.upstream, time.Hour)
	}
	for _, p := range pairs {
		relayEachWay(t, p.client, p.upstream, "a1 NOOP\r\n")
	}
	after := memNow()
	t.Logf("%d idle sessions: heap %.1f KiB/session, goroutine stacks %.1f KiB/session",
		k, float64(after.HeapInuse-before.HeapInuse)/k/1024, float64(after.StackInuse-before.StackInuse)/k/1024)
	for i, s := range sessions {
		pairs[i].client.Close()
		pairs[i].upstream.Close()
		s.wait(t)
	}
}

func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// openFiles counts this process's open file descriptors, after letting the
// garbage collector close pooled splice pipes nobody holds.
func openFiles(t *testing.T) int {
	t.Helper()
	n := -1
	for range 5 { // pooled pipes close in finalizers, after a GC or two
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count open files: %v", err)
		}
		if n >= 0 && len(fds) >= n {
			break
		}
		n = len(fds)
	}
	return n
}

// TestSpliceIdleHoldsNoPipe: a parked session whose legs are both TCP (so
// its bytes go by splice(2)) holds no pipe while it waits. A splice call
// that waited for bytes held a pipe, two more file descriptors per
// direction, so idle sessions reached the open-file limit at a third of
// the sessions.
func TestSpliceIdleHoldsNoPipe(t *testing.T) {
	const k = 50
	type pair struct{ client, upstream net.Conn }
	pairs := make([]pair, k)
	sessions := make([]*session, k)
	legsOf := make([][2]Leg, k)
	for i := range pairs {
		ca, pc, pu, ua := legs(t)
		pairs[i] = pair{ca, ua}
		legsOf[i] = [2]Leg{{Conn: pc}, {Conn: pu}}
	}
	before := openFiles(t)
	for i, p := range pairs {
		sessions[i] = start(t, p.client, legsOf[i][0], legsOf[i][1], p.upstream, time.Hour)
	}
	for _, p := range pairs {
		relayEachWay(t, p.client, p.upstream, "a1 NOOP\r\n")
	}
	// A splice call lingers spliceLinger after its last byte; wait for
	// that (a bound, not a timing assertion).
	extra := openFiles(t) - before
	for end := time.Now().Add(10 * time.Second); extra >= k && time.Now().Before(end); {
		extra = openFiles(t) - before
	}
	if extra >= k {
		t.Errorf("%d parked sessions hold %d more open files than their sockets, want none (a pipe is 2)", k, extra)
	}
	for i, s := range sessions {
		pairs[i].client.Close()
		pairs[i].upstream.Close()
		s.wait(t)
	}
}
