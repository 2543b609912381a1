package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// parkSupported: silent directions are parked (see SpliceAsync).
const parkSupported = true

// parking is a parked direction's registration: its key in the shared
// epoll instance (0: not parked) and the connection registered.
type parking struct {
	key int32
	tc  *net.TCPConn
}

// park registers d's source with the shared epoll instance, one-shot, and
// reports true: the caller's goroutine must then return and touch d no
// more. It reports false (go on waiting in the runtime poller) when d
// cannot be parked: its source has none (parkSource), an idle verdict is
// pending, the session is closing, or epoll failed.
func (d *direction) park(now time.Time) bool {
	tc := parkSource(d.src)
	if tc == nil {
		return false
	}
	p := thePoller()
	if p == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kicked || d.done || d.parked.key != 0 || d.s.isClosed() {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	key := p.add(d)
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: key}
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || ctlErr != nil {
		p.remove(key)
		return false
	}
	d.parked = parking{key: key, tc: tc}
	// The idle verdict needs a goroutine: resume when the session may
	// have been silent for idle.
	last := time.Unix(0, max(d.lastByte.Load(), d.other.lastByte.Load()))
	d.s.wakeAt(max(last.Add(d.s.idle).Sub(now), 0))
	return true
}

// parkAtStart parks d before it first runs (SpliceAsync) if its source
// has nothing for it yet; it reports false when d must run now: it has
// bytes to forward (d.pending, which may now hold bytes read here), or it
// cannot park (see park). A source that reads through user space (TLS)
// may hold a record crypto/tls has taken from the socket but not returned
// (a client that pipelined after its login): one Read that must not wait
// (a deadline in the past) tells, as before any park (see parkSource).
// A plain TCP source (or a SpliceSource that passes reads to splice(2))
// holds nothing outside the socket, and epoll reports a socket that is
// readable already at once.
func (d *direction) parkAtStart() bool {
	if len(d.pending) > 0 || ParkAfter >= d.s.idle || parkSource(d.src) == nil {
		return false
	}
	if !readsFromSocket(d.src) {
		probe := probes.Get().(*[512]byte)
		defer probes.Put(probe)
		d.mu.Lock()
		err := d.src.SetReadDeadline(aLongTimeAgo)
		d.mu.Unlock()
		if err != nil {
			return false
		}
		n, err := d.src.Read(probe[:])
		if n > 0 {
			d.pending = bytes.Clone(probe[:n])
			return false
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false // the direction meets it again and ends
		}
	}
	return d.park(time.Now())
}

// readsFromSocket reports whether src's reads take bytes straight from
// its TCP socket, with no user-space buffer between.
func readsFromSocket(src net.Conn) bool {
	switch c := src.(type) {
	case *net.TCPConn:
		return true
	case SpliceSource:
		return c.SpliceSource() != nil
	}
	return false
}

// wakeAt (re)arms the session's one idle timer, which wakes both
// directions (a direction not parked ignores it): whichever parked last
// sets it, and a later byte only moves the verdict later.
func (s *splice) wakeAt(wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idleTimer == nil {
		s.idleTimer = time.AfterFunc(wait, func() {
			s.up.wake()
			s.down.wake()
		})
		return
	}
	s.idleTimer.Reset(wait)
}

// wake resumes d if it is parked: it leaves the epoll set and a new
// goroutine runs it. It does nothing otherwise, so every event source
// (epoll, the idle timer, a kick, closeBoth, a Waker) may call it.
func (d *direction) wake() {
	d.mu.Lock()
	pk := d.parked
	d.parked = parking{}
	d.mu.Unlock()
	if pk.key == 0 {
		return
	}
	p := thePoller()
	p.remove(pk.key)
	if rc, err := pk.tc.SyscallConn(); err == nil {
		// A closed connection has left the epoll set with its file.
		rc.Control(func(fd uintptr) {
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	go runDirection(d.s, d)
}

// poller is the process's epoll instance for parked directions, with the
// goroutine that waits on it and resumes them.
type poller struct {
	epfd int

	mu     sync.Mutex
	next   int32
	parked map[int32]*direction
}

var (
	pollerOnce sync.Once
	thePoll    *poller
)

// thePoller is the shared poller, started on first use; nil if epoll is
// unavailable (sessions then are never parked).
func thePoller() *poller {
	pollerOnce.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			slog.Warn("splice: epoll unavailable, idle sessions keep their goroutines", "err", err)
			return
		}
		thePoll = &poller{epfd: epfd, parked: make(map[int32]*direction)}
		go thePoll.run()
	})
	return thePoll
}

// add gives d a key no parked direction holds.
func (p *poller) add(d *direction) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		p.next++
		if p.next <= 0 {
			p.next = 1
		}
		if _, used := p.parked[p.next]; !used {
			p.parked[p.next] = d
			return p.next
		}
	}
}

func (p *poller) remove(key int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.parked, key)
}

func (p *poller) lookup(key int32) *direction {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked[key]
}

// run waits for parked sources to become readable (or hang up) and wakes
// their directions. A stale event (the direction was woken otherwise
// meanwhile, perhaps parked again) at worst resumes it once for nothing.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			slog.Error("splice: epoll wait failed; parked sessions resume on their idle timers", "err", err)
			return
		}
		for _, ev := range events[:n] {
			if d := p.lookup(ev.Fd); d != nil {
				d.wake()
			}
		}
	}
}

// ParkedDirections is how many relay directions are parked now, in the
// whole process (two per silent session whose legs both can park).
func ParkedDirections() int {
	p := thePoller()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
