package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

const benchBytes = 64 << 20

// sendBench writes benchBytes to c in 1 MiB writes, then half-closes.
func sendBench(c *net.TCPConn, buf []byte, errc chan<- error) {
	for sent := 0; sent < benchBytes; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			errc <- err
			return
		}
	}
	errc <- c.CloseWrite()
}

// drain reads c to EOF and returns how many bytes came.
func drain(b *testing.B, c net.Conn) int64 {
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkSplice moves 64 MiB from a client through Splice to an upstream
// over loopback TCP, and the same 64 MiB over one direct loopback
// connection in the same iteration; it reports both rates and their ratio.
func BenchmarkSplice(b *testing.B) { benchSplice(b, plainLeg) }

// BenchmarkSpliceUserSpace is BenchmarkSplice with the client leg hidden
// behind a wrapper (as the IMAP relay's former byeConn was), so that the
// bytes go through user space.
func BenchmarkSpliceUserSpace(b *testing.B) { benchSplice(b, wrappedLeg) }

// BenchmarkSpliceSource is BenchmarkSplice with the sending leg behind a
// SpliceSource, as the IMAP relay's upstream connection is for FETCH.
func BenchmarkSpliceSource(b *testing.B) { benchSplice(b, sourceLeg) }

type legKind int

const (
	plainLeg   legKind = iota
	wrappedLeg         // user space
	sourceLeg          // a SpliceSource
)

// source is a SpliceSource that always allows splice(2).
type source struct{ *net.TCPConn }

func (s source) SpliceSource() *net.TCPConn { return s.TCPConn }

func benchSplice(b *testing.B, kind legKind) {
	buf := make([]byte, 1<<20)
	var direct, spliced time.Duration
	iters := 0
	for b.Loop() {
		iters++
		// Baseline: writer -> reader over one loopback connection.
		w, r := tcpPair(b)
		errc := make(chan error, 1)
		t0 := time.Now()
		go sendBench(w, buf, errc)
		if n := drain(b, r); n != benchBytes {
			b.Fatalf("direct: %d bytes", n)
		}
		direct += time.Since(t0)
		if err := <-errc; err != nil {
			b.Fatal(err)
		}

		// Through Splice: client -> proxy -> upstream.
		ca, pc, pu, ua := legs(b)
		var client net.Conn = pc
		switch kind {
		case wrappedLeg:
			client = wrappedConn{pc}
		case sourceLeg:
			client = source{pc}
		}
		s := start(b, ca, Leg{Conn: client}, Leg{Conn: pu}, ua, 0)
		t0 = time.Now()
		go sendBench(ca, buf, errc)
		if n := drain(b, ua); n != benchBytes {
			b.Fatalf("spliced: %d bytes", n)
		}
		spliced += time.Since(t0)
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		ua.CloseWrite()
		if err := s.wait(b); err != nil {
			b.Fatal(err)
		}
		s.cancel()
		ca.Close()
		ua.Close()
		w.Close()
		r.Close()
	}
	mbps := func(d time.Duration) float64 {
		return float64(iters) * benchBytes / (1 << 20) / d.Seconds()
	}
	b.ReportMetric(mbps(direct), "direct-MiB/s")
	b.ReportMetric(mbps(spliced), "splice-MiB/s")
	b.ReportMetric(mbps(spliced)/mbps(direct), "splice/direct")
}
