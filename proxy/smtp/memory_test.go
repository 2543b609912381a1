package smtp

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// heapGrowth runs f while sampling the heap and returns the peak of
// HeapAlloc above the level before f. Client, passgate and sink all run in
// this process, so it bounds passgate's own growth from above.
func heapGrowth(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	peak := <-done
	if peak < base {
		return 0
	}
	return peak - base
}

// send50MiB sends a 50 MiB message generated on the fly through passgate and
// checks that the sink got it whole; it returns the peak heap growth.
func send50MiB(t testing.TB, e *env) uint64 {
	t.Helper()
	const size = 50 << 20
	c := login(t, e.addr)
	before := len(e.sink.messages())
	var sendErr error
	growth := heapGrowth(func() {
		sendErr = send(c, &messageReader{left: size}, "bob@example.net")
	})
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	msgs := e.sink.messages()
	if len(msgs) != before+1 {
		t.Fatalf("sink has %d new messages, want 1", len(msgs)-before)
	}
	h := newHasher()
	n := hashAll(h, &messageReader{left: size})
	if m := msgs[len(msgs)-1]; m.size != n || m.hash != h.sum() {
		t.Fatalf("sink got %d bytes (hash match %v), want %d", m.size, m.hash == h.sum(), n)
	}
	return growth
}

// hashAll writes r into h and returns the byte count.
func hashAll(h *hasher, r *messageReader) int64 {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		total += int64(n)
		if err != nil {
			return total
		}
	}
}

func TestStreaming50MiBHeap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("50 MiB relay: slow in -short and -race runs")
	}
	e := newEnv(t, func(s *sink) { s.discard = true }, nil)
	growth := send50MiB(t, e)
	t.Logf("peak heap growth during a 50 MiB message: %.1f MiB", float64(growth)/(1<<20))
	// A memory bound, not a timing one: a buffered message would need 50 MiB.
	if growth > 16<<20 {
		t.Errorf("heap grew by %.1f MiB during a 50 MiB message, want < 16 MiB", float64(growth)/(1<<20))
	}
}

// BenchmarkRelay10MiB sends one 10 MiB message per iteration straight to
// the sink and one through passgate (each on its own authenticated session,
// reused), and reports both throughputs, their ratio, and the peak heap
// growth during one 50 MiB message through passgate.
func BenchmarkRelay10MiB(b *testing.B) {
	e := newEnv(b, func(s *sink) { s.discard = true }, nil)
	body := genMessage(10 << 20)
	direct := dial(b, e.sink.addr)
	if err := direct.Auth(sasl.NewPlainClient(appUser, masterUser, masterSecret)); err != nil {
		b.Fatal(err)
	}
	via := login(b, e.addr)
	var dDirect, dVia time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if err := send(direct, bytes.NewReader(body), "bob@example.net"); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := send(via, bytes.NewReader(body), "bob@example.net"); err != nil {
			b.Fatal(err)
		}
		dDirect += t1.Sub(t0)
		dVia += time.Since(t1)
		n++
	}
	mb := float64(len(body)*n) / 1e6
	b.ReportMetric(mb/dDirect.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/dVia.Seconds(), "passgate-MB/s")
	b.ReportMetric(dDirect.Seconds()/dVia.Seconds(), "ratio")
	b.ReportMetric(float64(send50MiB(b, e))/(1<<20), "peak-heap-MiB/50MiB-msg")
}
