package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ioDeadline bounds every read or write the test does itself, so a broken
// Splice fails the test instead of hanging it.
const ioDeadline = 30 * time.Second

// sendAndHalfClose writes b to c, then shuts down c's write side; the error
// (if any) goes to errc.
func sendAndHalfClose(c net.Conn, b []byte, errc chan<- error) {
	c.SetWriteDeadline(time.Now().Add(ioDeadline))
	if _, err := c.Write(b); err != nil {
		errc <- err
		return
	}
	errc <- c.(closeWriter).CloseWrite()
}

// readToEOF reads c until EOF under a deadline.
func readToEOF(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioDeadline))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read to EOF: %v", err)
	}
	return b
}

// readN reads exactly n bytes of c under a deadline.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioDeadline))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// relayEachWay sends msg from client to upstream and then back, and
// checks that each side reads it: the session relays both ways.
func relayEachWay(t *testing.T, client, upstream net.Conn, msg string) {
	t.Helper()
	for _, d := range [][2]net.Conn{{client, upstream}, {upstream, client}} {
		if _, err := d[0].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, d[1], len(msg)); string(got) != msg {
			t.Fatalf("relayed %q, want %q", got, msg)
		}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// exchange sends up from the client and down from the upstream at the same
// time, each followed by a half-close, and checks that the upstream received
// wantUp and the client wantDown (nil: what was sent).
func exchange(t *testing.T, s *session, up, down, wantUp, wantDown []byte) {
	t.Helper()
	errc := make(chan error, 2)
	go sendAndHalfClose(s.client, up, errc)
	go sendAndHalfClose(s.upstream, down, errc)
	gotUp := readToEOF(t, s.upstream)
	gotDown := readToEOF(t, s.client)
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if wantUp == nil {
		wantUp = up
	}
	if wantDown == nil {
		wantDown = down
	}
	if !bytes.Equal(gotUp, wantUp) {
		t.Errorf("upstream got %d bytes %.40q, want %d bytes %.40q", len(gotUp), gotUp, len(wantUp), wantUp)
	}
	if !bytes.Equal(gotDown, wantDown) {
		t.Errorf("client got %d bytes %.40q, want %d bytes %.40q", len(gotDown), gotDown, len(wantDown), wantDown)
	}
}

func TestSpliceBothWays(t *testing.T) {
	tests := []struct {
		name     string
		up, down []byte
	}{
		{"imap lines", []byte("a1 SELECT INBOX\r\na2 IDLE\r\n"), []byte("* 3 EXISTS\r\na1 OK done\r\n")},
		{"one way only", []byte("a1 LOGOUT\r\n"), nil},
		{"8 MiB random each way", randomBytes(t, 8<<20), randomBytes(t, 8<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, pc, pu, ua := legs(t)
			s := start(t, ca, Leg{Conn: pc}, Leg{Conn: pu}, ua, 0)
			exchange(t, s, tt.up, tt.down, nil, nil)
			if err := s.wait(t); err != nil {
				t.Fatalf("Splice = %v, want nil after EOF both ways", err)
			}
		})
	}
}

func TestSpliceBufferedFirst(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	// The client pipelined a2 after its login; the proxy had already read
	// a1's tail into its buffer. a2 is in the socket before Splice starts,
	// and must still arrive after the buffered bytes.
	if _, err := ca.Write([]byte("a2 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := ua.Write([]byte("* 2 RECENT\r\n")); err != nil {
		t.Fatal(err)
	}
	s := start(t, ca,
		Leg{Conn: pc, Buffered: []byte("a1 SELECT INBOX\r\n")},
		Leg{Conn: pu, Buffered: []byte("* 1 EXISTS\r\n")}, ua, 0)
	exchange(t, s, []byte("a3 LOGOUT\r\n"), []byte("* BYE\r\n"),
		[]byte("a1 SELECT INBOX\r\na2 NOOP\r\na3 LOGOUT\r\n"),
		[]byte("* 1 EXISTS\r\n* 2 RECENT\r\n* BYE\r\n"))
	if err := s.wait(t); err != nil {
		t.Fatalf("Splice = %v", err)
	}
}

func TestSpliceHalfClose(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	s := start(t, ca, Leg{Conn: pc}, Leg{Conn: pu}, ua, 0)

	// The client sends its request and shuts down its write side.
	if _, err := ca.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := ca.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The upstream sees the request, then EOF...
	if got := readToEOF(t, ua); string(got) != "request" {
		t.Fatalf("upstream read %q, want %q then EOF", got, "request")
	}
	// ...and can still answer, then close.
	if _, err := ua.Write([]byte("answer")); err != nil {
		t.Fatalf("upstream answer after client half-close: %v", err)
	}
	if err := ua.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readToEOF(t, ca); string(got) != "answer" {
		t.Fatalf("client read %q, want %q", got, "answer")
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("Splice = %v, want nil", err)
	}
}

// noHalfClose hides CloseWrite, like a conn type that cannot half-close.
type noHalfClose struct{ net.Conn }

// TestSpliceNoHalfClose: a client leg that cannot carry a half-close (a
// conn type without CloseWrite, or one marked NoHalfClose: IMAP, where the
// upstream closing ends the session even though the client's TCP could
// be half-closed) is closed, not half-closed, when the upstream ends.
func TestSpliceNoHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(net.Conn) Leg
	}{
		{"no CloseWrite", func(c net.Conn) Leg { return Leg{Conn: noHalfClose{c}} }},
		{"NoHalfClose", func(c net.Conn) Leg { return Leg{Conn: c, NoHalfClose: true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, pc, pu, ua := legs(t)
			s := start(t, ca, tc.client(pc), Leg{Conn: pu}, ua, 0)
			if _, err := ua.Write([]byte("* BYE\r\n")); err != nil {
				t.Fatal(err)
			}
			ua.CloseWrite()
			if got := readToEOF(t, ca); string(got) != "* BYE\r\n" {
				t.Fatalf("client read %q", got)
			}
			if got := readToEOF(t, ua); len(got) != 0 {
				t.Fatalf("upstream read %q, want EOF", got)
			}
			if err := s.wait(t); err != nil {
				t.Fatalf("Splice = %v, want nil", err)
			}
		})
	}
}

func TestSpliceIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, withTLS := range []bool{false, true} {
		name := "tcp"
		if withTLS {
			name = "tls client leg"
		}
		t.Run(name, func(t *testing.T) {
			ca, pc, pu, ua := legs(t)
			var client, proxyClient net.Conn = ca, pc
			if withTLS {
				client, proxyClient = tlsPair(t, ca, pc)
			}
			s := start(t, client, Leg{Conn: proxyClient}, Leg{Conn: pu}, ua, idle)
			// Some traffic first, then silence both ways.
			if _, err := client.Write([]byte("a1 NOOP\r\n")); err != nil {
				t.Fatal(err)
			}
			readN(t, ua, len("a1 NOOP\r\n"))
			err := s.wait(t)
			if !errors.Is(err, ErrIdle) {
				t.Fatalf("Splice = %v, want ErrIdle", err)
			}
			// Both peers see their connection closed.
			client.SetReadDeadline(time.Now().Add(ioDeadline))
			if n, err := client.Read(make([]byte, 1)); err == nil {
				t.Errorf("client read %d bytes after idle end, want EOF/closed", n)
			}
			if got := readToEOF(t, ua); len(got) != 0 {
				t.Errorf("upstream read %q after idle end", got)
			}
		})
	}
}

// A long one-way transfer (a big FETCH while the client says nothing) is
// not idleness: the session must survive although the client direction is
// silent for several idle periods.
func TestSpliceOneWayTrafficIsNotIdle(t *testing.T) {
	const idle = 400 * time.Millisecond
	ca, pc, pu, ua := legs(t)
	s := start(t, ca, Leg{Conn: pc}, Leg{Conn: pu}, ua, idle)

	tick := time.NewTicker(idle / 20)
	defer tick.Stop()
	begin := time.Now()
	n := 0
	for time.Since(begin) < 4*idle {
		<-tick.C
		if _, err := ua.Write([]byte("*")); err != nil {
			t.Fatalf("upstream write after %v: %v", time.Since(begin), err)
		}
		readN(t, ca, 1)
		n++
	}
	// The client direction, silent all along, still works.
	if _, err := ca.Write([]byte("a1 LOGOUT\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, ua, len("a1 LOGOUT\r\n")); string(got) != "a1 LOGOUT\r\n" {
		t.Fatalf("upstream read %q", got)
	}
	ua.Close()
	ca.Close()
	if err := s.wait(t); errors.Is(err, ErrIdle) {
		t.Fatalf("Splice = %v after %d one-way writes: ended as idle", err, n)
	}
}

func TestSpliceContextCancel(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	s := start(t, ca, Leg{Conn: pc}, Leg{Conn: pu}, ua, 0)
	if _, err := ca.Write([]byte("a1 IDLE\r\n")); err != nil {
		t.Fatal(err)
	}
	readN(t, ua, len("a1 IDLE\r\n"))
	s.cancel() // what a revocation does
	err := s.wait(t)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Splice = %v, want context.Canceled", err)
	}
	if got := readToEOF(t, ca); len(got) != 0 {
		t.Errorf("client read %q after cancel", got)
	}
	if got := readToEOF(t, ua); len(got) != 0 {
		t.Errorf("upstream read %q after cancel", got)
	}
}

func TestSpliceTLSLeg(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	client, proxyClient := tlsPair(t, ca, pc)
	s := start(t, client, Leg{Conn: proxyClient, Buffered: []byte("a0 ")},
		Leg{Conn: pu}, ua, 0)
	up := append([]byte("NOOP\r\n"), randomBytes(t, 1<<20)...)
	down := randomBytes(t, 3<<20)
	// CloseWrite on the TLS client sends close_notify; the upstream must see
	// EOF, and the proxy's CloseWrite on its TLS leg ends the client's read.
	exchange(t, s, up, down, append([]byte("a0 "), up...), nil)
	if err := s.wait(t); err != nil {
		t.Fatalf("Splice = %v, want nil", err)
	}
}

// switchSource is a SpliceSource that lets Splice splice its reads until
// stopped, then upper-cases what it reads, and counts its Read calls.
type switchSource struct {
	*net.TCPConn
	stopped atomic.Bool
	reads   atomic.Int64
}

func (s *switchSource) SpliceSource() *net.TCPConn {
	if s.stopped.Load() {
		return nil
	}
	return s.TCPConn
}

func (s *switchSource) Read(p []byte) (int, error) {
	s.reads.Add(1)
	n, err := s.TCPConn.Read(p)
	copy(p, bytes.ToUpper(p[:n]))
	return n, err
}

// TestSpliceSource: the upstream's bytes bypass a SpliceSource's Read (they
// go by splice(2)) until it declines; a read deadline in the past then ends
// the splice in progress, and the next bytes go through its Read.
func TestSpliceSource(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	src := &switchSource{TCPConn: pu}
	s := start(t, ca, Leg{Conn: pc}, Leg{Conn: src}, ua, 0)
	big := bytes.Repeat([]byte("spliced "), 1<<17) // 1 MiB
	if _, err := ua.Write(big); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, ca, len(big)); !bytes.Equal(got, big) {
		t.Fatalf("client got %.40q...", got)
	}
	if n := src.reads.Load(); n != 0 {
		t.Errorf("%d Read calls while splicing, want 0", n)
	}
	src.stopped.Store(true)
	src.SetReadDeadline(time.Unix(1, 0))
	// A splice call still running passes on what arrives; once Splice
	// reads through the source, the next bytes are its Read's.
	for src.reads.Load() == 0 {
		runtime.Gosched()
	}
	if _, err := ua.Write([]byte("read\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, ca, 6); string(got) != "READ\r\n" {
		t.Errorf("client got %q after the switch, want the source's Read %q", got, "READ\r\n")
	}
	ca.Close()
	ua.Close()
	s.wait(t)
}

// A panic while relaying one session (here in its byte counter) ends that
// session with an error and closes both legs; it does not take the process
// down, whichever goroutine the direction was resumed on.
func TestSplicePanicEndsOnlyTheSession(t *testing.T) {
	ca, pc, pu, ua := legs(t)
	s := start(t, ca, Leg{Conn: pc, Count: func(int64) { panic("counter broke") }}, Leg{Conn: pu}, ua, 0)
	if _, err := ca.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	err := s.wait(t)
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Splice = %v, want an error saying the relay panicked", err)
	}
	if _, err := ua.Read(make([]byte, 64)); err == nil {
		// The bytes may have been written before the counter ran: read
		// on until the close shows.
		if _, err := io.ReadAll(ua); err != nil {
			t.Fatalf("upstream leg after the panic: %v", err)
		}
	}
}
