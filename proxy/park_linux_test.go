package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
)

// shortPark makes silent sessions park after a few milliseconds for the
// test (ParkAfter is read by relays only, and tests here run one at a time).
func shortPark(t *testing.T) {
	old := ParkAfter
	ParkAfter = 5 * time.Millisecond
	t.Cleanup(func() { ParkAfter = old })
}

// waitParked waits until at least n directions are parked, failing the
// test if that takes absurdly long (a hang, not a timing assertion).
func waitParked(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ParkedDirections() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d directions parked, want %d", ParkedDirections(), n)
		}
	}
}

// TestParkedSessionResumes: a silent session parks both directions, and
// bytes from either side resume it and reach the other side.
func TestParkedSessionResumes(t *testing.T) {
	shortPark(t)
	clientApp, proxyClient, proxyUp, upstreamApp := legs(t)
	s := start(t, clientApp, Leg{Conn: proxyClient}, Leg{Conn: proxyUp}, upstreamApp, time.Hour)
	for i, step := range []struct {
		from, to net.Conn
		msg      string
	}{
		{clientApp, upstreamApp, "a NOOP\r\n"},
		{upstreamApp, clientApp, "* 4 EXISTS\r\n"},
		{upstreamApp, clientApp, "* 5 EXISTS\r\n"},
		{clientApp, upstreamApp, "b LOGOUT\r\n"},
	} {
		waitParked(t, 2)
		if _, err := step.from.Write([]byte(step.msg)); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, step.to, len(step.msg)); string(got) != step.msg {
			t.Fatalf("step %d: got %q, want %q", i, got, step.msg)
		}
	}
	waitParked(t, 2)
	s.cancel()
	if err := s.wait(t); err == nil {
		t.Error("Splice returned nil after cancel, want the context's error")
	}
	if n := ParkedDirections(); n != 0 {
		t.Errorf("%d directions still parked after the session ended", n)
	}
}

// TestParkedSessionsHoldNoGoroutine counts goroutines: parked sessions
// hold none, and all end when their contexts do.
func TestParkedSessionsHoldNoGoroutine(t *testing.T) {
	shortPark(t)
	const k = 100
	pairs := make([]parkPair, k)
	for i := range pairs {
		p := &pairs[i]
		p.clientApp, p.proxyClient, p.proxyUp, p.upstreamApp = legs(t)
	}
	thePoller() // its one goroutine is not the sessions'
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ended sync.WaitGroup
	for _, p := range pairs {
		ended.Add(1)
		SpliceAsync(ctx, Leg{Conn: p.proxyClient}, Leg{Conn: p.proxyUp}, time.Hour, func(error) { ended.Done() })
	}
	waitParked(t, 2*k)
	// A direction counts as parked just before its goroutine returns:
	// wait for the goroutines to be gone (a hang guard, not a timing).
	for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d parked sessions hold %d goroutines, want none\n%s", k, runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
		}
	}
	// They still work: bytes each way on every session.
	for _, p := range pairs {
		relayEachWay(t, p.clientApp, p.upstreamApp, "x")
	}
	cancel()
	ended.Wait()
	if n := ParkedDirections(); n != 0 {
		t.Errorf("%d directions still parked after the sessions ended", n)
	}
}

// batchConn holds its writes while held, to send them in one write: two
// TLS records reach the other end together.
type batchConn struct {
	net.Conn
	held bool
	buf  bytes.Buffer
}

func (b *batchConn) Write(p []byte) (int, error) {
	if b.held {
		return b.buf.Write(p)
	}
	return b.Conn.Write(p)
}

func (b *batchConn) flush() error {
	b.held = false
	_, err := b.Conn.Write(b.buf.Bytes())
	return err
}

// TestParkedTLSLegDrainsBufferedRecords: two TLS records arriving in one
// segment wake a parked TLS leg; crypto/tls reads both from the socket but
// returns one record's plaintext per Read, so a leg that parked while the
// second waited in its buffer would never deliver it. Both must arrive,
// and the session must park again afterwards.
func TestParkedTLSLegDrainsBufferedRecords(t *testing.T) {
	shortPark(t)
	clientRaw, proxyRaw, proxyUp, upstreamApp := legs(t)
	batch := &batchConn{Conn: clientRaw}
	clientApp, proxyClient := tls.Client(batch, testcert.ClientConfig("127.0.0.1")), tls.Server(proxyRaw, testcert.ServerConfig())
	errc := make(chan error, 1)
	go func() { errc <- proxyClient.Handshake() }()
	if err := clientApp.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	s := start(t, clientApp, Leg{Conn: proxyClient}, Leg{Conn: proxyUp}, upstreamApp, time.Hour)
	waitParked(t, 2)
	batch.held = true
	const one, two = "a NOOP\r\n", "b CAPABILITY\r\n"
	for _, m := range []string{one, two} {
		if _, err := clientApp.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.flush(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, upstreamApp, len(one+two)); string(got) != one+two {
		t.Fatalf("upstream got %q, want %q", got, one+two)
	}
	waitParked(t, 2)
	s.cancel()
	s.wait(t)
}

// TestSessionsParkAtStart counts goroutines: sessions silent from their
// start park at once, before ParkAfter (an hour here), so a burst of
// logins does not hold two goroutines per session for ParkAfter (the
// runtime keeps every goroutine descriptor it ever needed, and their
// stacks raised the heap's peak). Half the sessions have a TLS client
// leg, which is probed with one Read that must not wait. All still relay.
func TestSessionsParkAtStart(t *testing.T) {
	old := ParkAfter
	ParkAfter = time.Hour
	t.Cleanup(func() { ParkAfter = old })
	const k = 40
	pairs := make([]parkPair, k)
	for i := range pairs {
		p := &pairs[i]
		var clientRaw, proxyRaw *net.TCPConn
		var up *net.TCPConn
		clientRaw, proxyRaw, up, p.upstreamApp = legs(t)
		p.clientApp, p.proxyClient, p.proxyUp = clientRaw, proxyRaw, up
		if i%2 == 1 {
			p.clientApp, p.proxyClient = tlsPair(t, clientRaw, proxyRaw)
		}
	}
	thePoller()
	parked, before := ParkedDirections(), runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ended sync.WaitGroup
	for _, p := range pairs {
		ended.Add(1)
		SpliceAsync(ctx, Leg{Conn: p.proxyClient}, Leg{Conn: p.proxyUp}, 2*time.Hour, func(error) { ended.Done() })
	}
	if n := runtime.NumGoroutine() - before; n > k/2 {
		t.Errorf("%d silent sessions started %d goroutines, want none", k, n)
	}
	if n := ParkedDirections() - parked; n != 2*k {
		t.Errorf("%d silent sessions parked %d directions at their start, want %d", k, n, 2*k)
	}
	for _, p := range pairs {
		relayEachWay(t, p.clientApp, p.upstreamApp, "x")
	}
	cancel()
	ended.Wait()
}

// TestParkAtStartKeepsBufferedTLSRecord: a TLS client leg whose second
// record crypto/tls has already taken from the socket (the client sent
// two in one segment, the pre-auth reader read only the first) must not
// park at its start: the record would wait for the idle timeout.
func TestParkAtStartKeepsBufferedTLSRecord(t *testing.T) {
	old := ParkAfter
	ParkAfter = time.Hour
	t.Cleanup(func() { ParkAfter = old })
	clientRaw, proxyRaw, proxyUp, upstreamApp := legs(t)
	batch := &batchConn{Conn: clientRaw}
	clientApp, proxyClient := tlsPair(t, batch, proxyRaw)
	batch.held = true
	const one, two = "a LOGIN x y\r\n", "b SELECT INBOX\r\n"
	for _, m := range []string{one, two} {
		if _, err := clientApp.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.flush(); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, proxyClient, len(one)); string(got) != one { // one record per Read
		t.Fatalf("pre-auth read %q, want %q", got, one)
	}
	s := start(t, clientApp, Leg{Conn: proxyClient}, Leg{Conn: proxyUp}, upstreamApp, 2*time.Hour)
	if got := readN(t, upstreamApp, len(two)); string(got) != two {
		t.Fatalf("upstream got %q, want %q", got, two)
	}
	s.cancel()
	s.wait(t)
}

// parkPair is one relayed session of the parking tests: the client's and
// the upstream's ends, and passgate's two legs between them.
type parkPair struct{ clientApp, proxyClient, proxyUp, upstreamApp net.Conn }
