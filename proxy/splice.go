package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/store"
)

// DefaultIdle is the idle timeout Splice uses when given idle <= 0. It is
// longer than the 29 minutes after which an IMAP client must re-issue IDLE
// (RFC 2177 §3), so an idling client is never cut off.
const DefaultIdle = 35 * time.Minute

// chunk bounds one io.Copy call. With two *net.TCPConn legs each call is one
// splice(2) transfer through a kernel pipe (net/splice_linux.go moves at most
// 1 MiB per splice call); the loop around it re-arms the idle deadline.
const chunk = 1 << 20

// ErrIdle is returned (wrapped) by Splice when a session was silent in both
// directions for the idle timeout.
var ErrIdle = errors.New("session idle")

// Leg is one side of a relayed session: the connection and bytes already read
// from it but not yet forwarded.
type Leg struct {
	Conn     net.Conn
	Buffered []byte
	// Count, if not nil, is called with the number of bytes read from
	// this leg and written to the other, after each write (at most one
	// chunk at a time, so that a long session is counted as it goes).
	Count func(n int64)
	// NoHalfClose: an EOF from the other leg closes the session instead
	// of half-closing this leg (IMAP: a server that closes has ended the
	// session, RFC 3501 §3.4, and a client left half-closed would hold the
	// session until the idle timeout).
	NoHalfClose bool
}

// SpliceSource is a connection wrapper whose reads Splice may hand to
// splice(2) on the TCP connection underneath while SpliceSource returns
// it, and takes through the wrapper's own Read once it returns nil. Writes
// to the wrapper always go through its Write.
type SpliceSource interface {
	SpliceSource() *net.TCPConn
}

// RelayMetrics counts relayed bytes (internal/metrics implements it); a
// front-end turns it into the Count of its legs.
type RelayMetrics interface {
	Relayed(protocol store.Scope, fromClient bool, n int64)
}

// closeWriter is what half-close needs; *net.TCPConn and *tls.Conn have it.
type closeWriter interface{ CloseWrite() error }

// Splice writes each side's Buffered bytes to the other, then copies bytes
// both ways until either side closes, the session is idle for idle (DefaultIdle
// if idle <= 0), or ctx is done; it closes both connections before returning.
// Splice owns both connections from the call on.
//
// It returns nil on a normal close (EOF from both sides, or EOF from a side
// whose peer cannot be half-closed), an error wrapping ErrIdle after the idle
// timeout, one wrapping context.Cause(ctx) when ctx ended the session, and the
// first I/O error otherwise.
//
// Implementation notes:
//   - Zero-copy: when both ends are TCP, a direction first waits, through
//     the runtime poller and holding nothing (queued: SIOCINQ, or a peek for
//     EOF), until src is readable and learns how many bytes it holds, then
//     calls io.Copy(dst, &io.LimitedReader{R: src, N: those bytes}). io.Copy
//     calls dst's ReadFrom, which (net/splice_linux.go spliceFrom) unwraps
//     the LimitedReader and moves the bytes with splice(2) through a pooled
//     pipe (internal/poll.Splice). That call runs with a read deadline
//     spliceLinger away, so that it moves a flowing stream a pipe-full at a
//     time but returns soon after the stream pauses: a splice that waits for
//     more holds its pipe (two file descriptors) for as long as it waits, and
//     an idle session must hold none. The idle deadline applies to the wait
//     for readability, which returns os.ErrDeadlineExceeded having moved
//     nothing. Any other
//     leg (TLS, a SpliceSource that declines) goes through copyBuffered, which
//     parks in a 512-byte read and takes a pooled 32 KiB buffer only while
//     bytes stream (crypto/tls treats a read timeout as temporary, so the
//     connection stays usable).
//   - Idle: each read waits at most idle. A read that times out having moved
//     nothing means this direction was silent for idle; the session ends only
//     if the other direction was silent too, so a long one-way transfer (a big
//     FETCH while the client says nothing) is not cut off. The other
//     direction's bytes are only counted when its copy call returns, so the
//     silent side interrupts it (a read deadline in the past) and that side
//     gives the verdict with both counts up to date. A silent session ends
//     between one and about three idle periods after its last byte.
//   - Half-close: EOF on one direction shuts down the destination's write side
//     (TCP FIN or TLS close_notify) and the other direction goes on until its
//     own EOF. Any error closes both connections, which ends the other copy.
//   - There is no write deadline: a peer that stops reading blocks only its
//     direction, and the idle check of the other direction or TCP's own
//     retransmission timeout ends it.
//   - Parking (Linux, park_linux.go): a direction whose source is TCP
//     underneath (parkSource) waits ParkAfter instead of idle; if nothing
//     came, it registers the socket one-shot (EPOLLIN|EPOLLRDHUP) in the
//     process's one epoll instance and its goroutine returns, so a silent
//     session holds no goroutine and no stack. A wake (readability or
//     hang-up seen by the poller goroutine, the session's idle timer, a
//     kick, closeBoth, a Waker) leaves the epoll set and runs the
//     direction again from the top of its loop; each source wakes only a
//     parked direction, so a stale or doubled wake costs one loop at most.
//     A direction with nothing to read when the session starts parks at
//     once, without a goroutine (parkAtStart): a session that is silent
//     after login never holds one. Connections must be ended through ctx
//     (or SpliceStoppable's stop, or the idle timeout): closing them
//     behind Splice's back drops them from the epoll set silently.
func Splice(ctx context.Context, client, upstream Leg, idle time.Duration) error {
	result := make(chan error, 1)
	SpliceAsync(ctx, client, upstream, idle, func(err error) { result <- err })
	return <-result
}

// SpliceAsync is Splice without waiting: it returns at once and calls
// done with what Splice would return once the session has ended and both
// connections are closed. While the session is silent (ParkAfter without
// a byte in either direction) it holds no goroutine where the platform
// can park it (parkable): a readable or hung-up leg, ctx's end, the idle
// timeout or a Waker's wake resumes it.
func SpliceAsync(ctx context.Context, client, upstream Leg, idle time.Duration, done func(error)) {
	s := newSplice(client, upstream, idle, done)
	s.stop = context.AfterFunc(ctx, func() {
		s.fail(fmt.Errorf("splice: %w", context.Cause(ctx)))
	})
	s.start()
}

// SpliceStoppable is SpliceAsync without a context: stop ends the session
// as the context's end would, with an error wrapping cause (a later call
// does nothing). It spares each session what watching a context costs
// (the AfterFunc, the context's children map and done channel: about 400
// bytes per parked session) for a caller that learns of the end itself.
func SpliceStoppable(client, upstream Leg, idle time.Duration, done func(error)) (stop func(cause error)) {
	s := newSplice(client, upstream, idle, done)
	s.stop = func() bool { return true }
	s.start()
	return func(cause error) { s.fail(fmt.Errorf("splice: %w", cause)) }
}

// newSplice is the state of a session about to start.
func newSplice(client, upstream Leg, idle time.Duration, done func(error)) *splice {
	if idle <= 0 {
		idle = DefaultIdle
	}
	s := &splice{idle: idle, client: client.Conn, upstream: upstream.Conn, done: done}
	start := time.Now().UnixNano()
	up := &direction{name: "client->upstream", s: s, src: client.Conn, dst: upstream.Conn, pending: client.Buffered,
		count: client.Count, noHalfClose: upstream.NoHalfClose}
	down := &direction{name: "upstream->client", s: s, src: upstream.Conn, dst: client.Conn, pending: upstream.Buffered,
		count: upstream.Count, noHalfClose: client.NoHalfClose}
	up.other, down.other = down, up
	up.lastByte.Store(start)
	down.lastByte.Store(start)
	s.up, s.down = up, down
	s.running.Store(2)
	for _, d := range []*direction{up, down} {
		if w, ok := d.src.(Waker); ok {
			w.OnPark(d.wake)
		}
	}
	return s
}

// start runs (or parks) both directions; s.stop is set.
func (s *splice) start() {
	startDirection(s, s.down)
	startDirection(s, s.up)
}

// startDirection runs d on a goroutine of its own, unless it can wait
// parked from the start (parkAtStart): most sessions go silent right after
// login (a client that idles in IDLE), and would otherwise hold two
// goroutines, their stacks and probe buffers for ParkAfter each, which a
// burst of logins adds up to a peak that stays in the process (the
// runtime keeps every goroutine's descriptor for good).
func startDirection(s *splice, d *direction) {
	if d.parkAtStart() {
		return
	}
	go runDirection(s, d)
}

// Waker is a connection wrapper that must be able to resume the direction
// reading from it while the session is parked (proxy/imap: the goodbye
// switches the upstream's reads to user space). SpliceAsync calls OnPark
// once with the function that does it; wake may be called at any time and
// more than once.
type Waker interface {
	OnPark(wake func())
}

// ParkAfter is how long both directions of a session must have been
// silent before it is parked (see SpliceAsync): a busy session never
// pays the registration. Set it before the first Splice (tests).
var ParkAfter = time.Second

// splice is the state shared by the two directions of one session.
type splice struct {
	idle             time.Duration
	client, upstream net.Conn
	up, down         *direction
	done             func(error)  // SpliceAsync's
	stop             func() bool  // ends the context.AfterFunc (SpliceAsync)
	running          atomic.Int32 // directions not yet ended
	idleTimer        *time.Timer  // wakes parked directions for the idle verdict (guarded by mu)

	mu     sync.Mutex
	err    error // first failure; nil for a normal close
	closed bool
}

// fail records err if it is the first failure and closes both connections.
func (s *splice) fail(err error) {
	s.mu.Lock()
	if s.err == nil && !s.closed {
		s.err = err
	}
	s.mu.Unlock()
	s.closeBoth()
}

// closeBoth closes both connections and resumes a parked direction, which
// then ends on the closed connection.
func (s *splice) closeBoth() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.client.Close()
	s.upstream.Close()
	s.mu.Unlock()
	s.up.wake()
	s.down.wake()
}

// isClosed reports whether closeBoth ran.
func (s *splice) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ended is called by each direction once it has ended; the last one
// finishes the session.
func (s *splice) ended() {
	if s.running.Add(-1) > 0 {
		return
	}
	s.stop()
	s.closeBoth()
	s.mu.Lock()
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.mu.Unlock()
	s.done(s.result())
}

func (s *splice) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// direction is one copy: src's bytes go to dst.
type direction struct {
	name     string
	s        *splice
	src, dst net.Conn
	pending  []byte
	count    func(int64) // nil: not counted
	// noHalfClose: EOF from src closes both instead of half-closing dst.
	noHalfClose bool
	other       *direction
	lastByte    atomic.Int64 // unix nanoseconds when bytes were last seen moving

	mu     sync.Mutex // guards kicked, done, parked and the read deadline of src
	kicked bool       // the other direction asks for an idle verdict
	done   bool
	parked parking // while no goroutine runs the direction (park_linux.go)
}

// aLongTimeAgo is a read deadline that makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// runDirection copies one direction to its end, then half-closes or
// closes, and tells s it has ended; or it parks the direction, which a
// later wake resumes by running it again.
func runDirection(s *splice, d *direction) {
	err := copyDirectionRecovered(s, d)
	if err == errParked {
		return
	}
	defer s.ended()
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("splice %s: %w", d.name, err))
		return
	}
	// EOF from src: pass it on and let the other direction finish.
	if cw, ok := d.dst.(closeWriter); ok && !d.noHalfClose && cw.CloseWrite() == nil {
		return
	}
	s.closeBoth()
}

// copyDirectionRecovered is copyDirection with a panic turned into the
// session's error: a direction may run on a goroutine of its own (resumed
// after parking), where nothing else would stop a panic from ending the
// process. Only runtime errors are logged with their text.
func copyDirectionRecovered(s *splice, d *direction) (err error) {
	defer func() {
		if v := recover(); v != nil {
			slog.Error("relay panicked", "direction", d.name, "panic", PanicText(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("splice %s: relay panicked", d.name)
		}
	}()
	return copyDirection(s, d)
}

// copyDirection forwards d.pending, then copies d.src to d.dst one chunk at a
// time until EOF (nil), idleness (ErrIdle) or an error.
func copyDirection(s *splice, d *direction) error {
	if len(d.pending) > 0 {
		n, err := d.dst.Write(d.pending)
		d.counted(int64(n))
		if err != nil {
			return err
		}
		d.pending = nil
		d.lastByte.Store(time.Now().UnixNano())
	}
	for {
		if err := d.arm(s.idle); err != nil {
			return err
		}
		n, err := d.copyChunk()
		d.counted(n)
		now := time.Now()
		if n > 0 {
			d.lastByte.Store(now.UnixNano())
		}
		kicked := d.takeKick()
		switch {
		case err == nil:
			continue // a full chunk; more may follow
		case err == io.EOF:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		case n > 0:
			continue // busy until the deadline
		case s.quiet(d, now, kicked):
			return ErrIdle
		case d.park(now):
			return errParked
		}
	}
}

// counted reports n moved bytes to d.count.
func (d *direction) counted(n int64) {
	if n > 0 && d.count != nil {
		d.count(n)
	}
}

// copyChunk copies up to chunk bytes from d.src to d.dst; it returns nil
// after a full chunk, io.EOF at the end of src, or the first error.
func (d *direction) copyChunk() (int64, error) {
	if src, dst := spliceable(d.src, d.dst); src != nil {
		// Wait holding nothing, then splice.
		ready, err := queued(src)
		if err != nil {
			return 0, err
		}
		if ready == 0 {
			return 0, io.EOF
		}
		if err := d.linger(); err != nil {
			return 0, err
		}
		lr := &io.LimitedReader{R: src, N: chunk}
		n, err := io.Copy(dst, lr)
		if err == nil && lr.N > 0 {
			err = io.EOF
		}
		return n, err
	}
	return d.copyBuffered()
}

// spliceable returns the TCP connections between which io.Copy moves
// src's bytes to dst with splice(2), holding no user-space buffer, or nils.
func spliceable(src, dst net.Conn) (*net.TCPConn, *net.TCPConn) {
	d, ok := dst.(*net.TCPConn)
	if !ok {
		return nil, nil
	}
	switch s := src.(type) {
	case *net.TCPConn:
		return s, d
	case SpliceSource:
		if tc := s.SpliceSource(); tc != nil {
			return tc, d
		}
	}
	return nil, nil
}

// relayBufs holds the copy buffers of busy directions, probes the small
// ones they read into first.
var (
	relayBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}
	probes    = sync.Pool{New: func() any { return new([512]byte) }}
)

// copyBuffered is copyChunk through user space. A parked direction waits
// in a Read into its small probe buffer; only when a read fills it (more is
// likely waiting) does it take a 32 KiB buffer from relayBufs, and gives it
// back once a read no longer fills that (the source is drained). So an idle
// session holds no large buffer, and a bulk transfer pays one small read
// per burst.
func (d *direction) copyBuffered() (int64, error) {
	var big *[32 << 10]byte
	probe := probes.Get().(*[512]byte)
	defer func() {
		probes.Put(probe)
		if big != nil {
			relayBufs.Put(big)
		}
	}()
	var written int64
	for written < chunk {
		p := probe[:]
		if big != nil {
			p = big[:]
		}
		p = p[:min(int64(len(p)), chunk-written)]
		nr, rerr := d.src.Read(p)
		if nr > 0 {
			nw, werr := d.dst.Write(p[:nr])
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
			if nw != nr {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			return written, rerr
		}
		switch {
		case big == nil && nr == len(p):
			big = relayBufs.Get().(*[32 << 10]byte)
		case big != nil && nr < len(p):
			relayBufs.Put(big)
			big = nil
		}
	}
	return written, nil
}

// quiet decides, after d read nothing for a whole wait, whether the session
// is idle. If the other direction may hold bytes it has not reported yet, it
// is interrupted to report them and give the verdict itself.
func (s *splice) quiet(d *direction, now time.Time, kicked bool) bool {
	last := max(d.lastByte.Load(), d.other.lastByte.Load())
	if now.Sub(time.Unix(0, last)) < s.idle {
		return false
	}
	if kicked {
		return true // the other side found itself silent just now
	}
	return !d.other.kick()
}

// arm sets the read deadline for the next copy call: idle from now, or the
// past if an idle verdict was requested.
func (d *direction) arm(idle time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := time.Now().Add(idle)
	if parkSupported && ParkAfter < idle && parkSource(d.src) != nil {
		t = time.Now().Add(ParkAfter) // then park (see copyDirection)
	}
	if d.kicked {
		t = aLongTimeAgo
	}
	return d.src.SetReadDeadline(t)
}

// spliceLinger is how long one splice(2) call goes on, holding its pipe,
// once bytes arrived: a stream keeps flowing through one call (a syscall
// pair per pipe-full), and a pipe is back in the pool at most spliceLinger
// after the stream pauses.
const spliceLinger = 20 * time.Millisecond

// linger bounds the splice call about to start to spliceLinger, unless an
// idle verdict was requested (the deadline is then in the past already).
func (d *direction) linger() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kicked {
		return nil
	}
	return d.src.SetReadDeadline(time.Now().Add(spliceLinger))
}

// kick asks d for an idle verdict by ending its current read; it reports
// false if d has already finished (its byte count is then final).
func (d *direction) kick() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return false
	}
	d.kicked = true
	d.src.SetReadDeadline(aLongTimeAgo)
	d.mu.Unlock()
	d.wake() // a parked direction gives its verdict too
	d.mu.Lock()
	return true
}

func (d *direction) takeKick() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.kicked
	d.kicked = false
	return k
}
