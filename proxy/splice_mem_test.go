package proxy

import (
	"io"
	"net"
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
	line := []byte("a1 NOOP\r\n")
	got := make([]byte, len(line))
	for _, p := range pairs {
		for _, d := range [][2]net.Conn{{p.client, p.upstream}, {p.upstream, p.client}} {
			if _, err := d[0].Write(line); err != nil {
				t.Fatal(err)
			}
			d[1].SetReadDeadline(time.Now().Add(time.Minute))
			if _, err := io.ReadFull(d[1], got); err != nil || string(got) != string(line) {
				t.Fatalf("relayed %q, %v", got, err)
			}
		}
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
