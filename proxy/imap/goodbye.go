package imap

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/proxy"
)

// byeTimeout bounds each step of a goodbye to a relayed client: waiting
// for the client's command in progress to be forwarded, writing LOGOUT
// upstream, and waiting for the upstream to answer it and close.
const byeTimeout = time.Second

// aLongTimeAgo is a read deadline that makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// A relayed session ends with a goodbye (revocation, or the end of
// Shutdown's grace period) without passgate following the upstream's
// responses byte by byte, which would keep every byte of a FETCH in user
// space instead of splice(2). The upstream knows where its responses end,
// so passgate lets it say goodbye: it follows the client's commands (the
// light direction), and between two of them sends the upstream its own
// "LOGOUT" ("DONE" first if the client is in IDLE). The upstream finishes
// what it is sending, says "* BYE" and its tagged OK, and closes. Only then,
// from that LOGOUT on, are the upstream's bytes read in user space, to
// replace those two last lines with passgate's own "* BYE" line (the
// client never sent the LOGOUT, and learns why it is logged out). If the
// client is in the middle of a command (half a line, or a literal it is
// still sending) or compressed the stream (COMPRESS, RFC 4978), or the
// upstream does not answer within byeTimeout, there is no goodbye: the
// session is closed, as nginx and Dovecot's own proxy do.

// upstreamConn is the upstream connection of a relayed session: it follows
// the client's commands as Splice writes them, and hands the upstream's
// bytes to splice(2) until logout.
type upstreamConn struct {
	net.Conn
	tcp *net.TCPConn // Conn if it is plain TCP, else nil

	// turn is held for each Write and by logout (a channel rather than a
	// mutex so that logout can give up waiting). It guards cmds and
	// loggedOut.
	turn      chan struct{}
	cmds      cmdTracker
	loggedOut bool // LOGOUT sent or given up: the client's bytes are dropped

	ending  atomic.Bool   // LOGOUT is about to be sent: reads go through tail
	tail    *byeTail      // set before ending (a pointer: most sessions never need one); then used by the reading side only
	reading chan struct{} // made before ending; closed by the first Read after it
	wake    func()        // resumes the parked reading side (proxy.Waker); guarded by turn
}

func newUpstreamConn(c net.Conn) *upstreamConn {
	tcp, _ := c.(*net.TCPConn)
	return &upstreamConn{Conn: c, tcp: tcp, turn: make(chan struct{}, 1), cmds: cmdTracker{atEnd: true, first: true}}
}

// SpliceSource lets proxy.Splice move the upstream's bytes with splice(2)
// until logout (proxy.SpliceSource).
func (u *upstreamConn) SpliceSource() *net.TCPConn {
	if u.ending.Load() {
		return nil
	}
	return u.tcp
}

// ParkSource lets proxy.SpliceAsync park the reading side until logout
// (proxy.Parkable): from then on its reads go through tail.
func (u *upstreamConn) ParkSource() *net.TCPConn {
	if u.ending.Load() {
		return nil
	}
	if u.tcp != nil {
		return u.tcp
	}
	if tc, ok := u.Conn.(*tls.Conn); ok {
		t, _ := tc.NetConn().(*net.TCPConn)
		return t
	}
	return nil
}

// OnPark keeps the function that resumes the parked reading side, which
// logout calls (proxy.Waker).
func (u *upstreamConn) OnPark(wake func()) {
	u.turn <- struct{}{}
	defer func() { <-u.turn }()
	u.wake = wake
}

// Read reads the upstream's bytes; after logout, with the goodbye rewritten.
func (u *upstreamConn) Read(p []byte) (int, error) {
	if u.ending.Load() {
		if u.reading != nil {
			close(u.reading)
			u.reading = nil
		}
		return u.tail.read(u.Conn, p)
	}
	return u.Conn.Read(p)
}

// Write forwards the client's bytes and follows its commands.
func (u *upstreamConn) Write(p []byte) (int, error) {
	u.turn <- struct{}{}
	defer func() { <-u.turn }()
	if u.loggedOut {
		return len(p), nil // the session is ending; its client's commands with it
	}
	n, err := u.Conn.Write(p)
	u.cmds.scan(p[:n])
	return n, err
}

// logout sends the upstream LOGOUT if the client is between two commands
// (within byeTimeout), so that the upstream's goodbye reaches the client as
// bye. It reports whether LOGOUT was sent; either way the client's further
// bytes are dropped.
func (u *upstreamConn) logout(bye string) bool {
	wait := time.NewTimer(byeTimeout)
	defer wait.Stop()
	select {
	case u.turn <- struct{}{}:
		defer func() { <-u.turn }()
	case <-wait.C:
		return false
	}
	if u.loggedOut {
		return false
	}
	u.loggedOut = true
	if !u.cmds.atEnd || u.cmds.opaque {
		return false
	}
	tag := "pg" + proxy.NewSessionID()
	u.tail = &byeTail{tag: []byte(tag + " "), bye: bye, lineStart: true}
	reading := make(chan struct{})
	u.reading = reading
	u.ending.Store(true)
	// A read in progress (splice(2) or not) returns, and the next goes
	// through Read. LOGOUT goes only once it has, so that no splice call
	// still running can pass the upstream's answer on untouched; a client
	// that does not read what is on its way gets no goodbye.
	u.Conn.SetReadDeadline(aLongTimeAgo)
	if u.wake != nil {
		u.wake() // a parked reading side reads again, through Read
	}
	select {
	case <-reading:
	case <-wait.C:
		return false
	}
	cmd := tag + " LOGOUT\r\n"
	if u.cmds.idling {
		cmd = "DONE\r\n" + cmd
	}
	u.Conn.SetWriteDeadline(time.Now().Add(byeTimeout))
	_, err := io.WriteString(u.Conn, cmd)
	return err == nil
}

// maxLiteralTail is what cmdTracker keeps of a line to find a literal
// announcement at its end: "{4294967295+}" and the CR.
const maxLiteralTail = 16

// maxHead is what cmdTracker keeps of a command's first line to know the
// command: a tag of up to 48 bytes, "COMPRESS".
const maxHead = 64

// cmdTracker follows the client's commands (RFC 3501 §2.2.1, §4.3): lines,
// each possibly announcing a literal of n bytes with "{n}", "{n+}" (RFC
// 7888) or "~{n}" (RFC 3516) before its CRLF, after which the command
// goes on.
type cmdTracker struct {
	atEnd   bool  // the last byte ended a command
	first   bool  // the current line is a command's first
	literal int64 // literal bytes still to come
	idling  bool  // the last command was IDLE, not yet ended by DONE
	opaque  bool  // COMPRESS was sent: the stream is no longer text
	tail    []byte
	head    []byte
}

func (t *cmdTracker) scan(p []byte) {
	for len(p) > 0 {
		if t.literal > 0 {
			n := min(int64(len(p)), t.literal)
			t.literal -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.keep(p)
			t.atEnd = false
			return
		}
		t.keep(p[:i])
		p = p[i+1:]
		n, _, ok := parseLiteral(bytes.TrimSuffix(t.tail, []byte{'\r'}))
		if t.first {
			t.command()
		}
		t.tail, t.head = t.tail[:0], t.head[:0]
		t.literal, t.atEnd, t.first = n, !ok, !ok
	}
}

// command notes what the command whose first line is t.head does to the
// stream: IDLE until the next line (DONE), COMPRESS for good.
func (t *cmdTracker) command() {
	f := bytes.Fields(t.head)
	t.idling = len(f) == 2 && bytes.EqualFold(f[1], []byte("IDLE"))
	if len(f) >= 2 && bytes.EqualFold(f[1], []byte("COMPRESS")) {
		t.opaque = true
	}
}

// keep appends p to the line's tail (its last maxLiteralTail bytes) and,
// on a command's first line, to its head (its first maxHead bytes).
func (t *cmdTracker) keep(p []byte) {
	if t.first && len(t.head) < maxHead {
		t.head = append(t.head, p[:min(len(p), maxHead-len(t.head))]...)
	}
	if len(p) >= maxLiteralTail {
		t.tail = append(t.tail[:0], p[len(p)-maxLiteralTail:]...)
		return
	}
	t.tail = append(t.tail, p...)
	if over := len(t.tail) - maxLiteralTail; over > 0 {
		t.tail = append(t.tail[:0], t.tail[over:]...)
	}
}

// maxHeld bounds what byeTail holds back: the upstream's "* BYE" and
// tagged lines are short.
const maxHeld = 4096

// byeTail passes the upstream's bytes on after passgate's LOGOUT, holding
// back its last two lines; at the end of the stream, if they are a "* BYE"
// and the answer to that LOGOUT, it replaces them with bye.
type byeTail struct {
	tag       []byte // "<tag> "
	bye       string
	held      []byte // the stream's end, not passed on yet
	lineStart bool   // held starts at the start of a line
	out       []byte // ready to be read
	err       error  // the read error to return once out is read
}

func (t *byeTail) read(src io.Reader, p []byte) (int, error) {
	for len(t.out) == 0 {
		if t.err != nil {
			return 0, t.err
		}
		n, err := src.Read(p)
		t.held = append(t.held, p[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Splice's idle check, or logout's own kick: not the end.
			return 0, err
		}
		if err != nil {
			t.out, t.held, t.err = t.finish(), nil, err
			if len(t.out) == 0 {
				return 0, err
			}
			break
		}
		k := t.keepFrom()
		t.out = bytes.Clone(t.held[:k])
		t.held = append(t.held[:0], t.held[k:]...)
	}
	n := copy(p, t.out)
	t.out = t.out[n:]
	return n, nil
}

// keepFrom is where the part of held to keep starts: the last two whole
// lines and the partial one after them, at most maxHeld bytes.
func (t *byeTail) keepFrom() int {
	k, lfs := 0, 0
	for i := len(t.held) - 1; i >= 0 && k == 0; i-- {
		if t.held[i] == '\n' {
			if lfs++; lfs == 3 {
				k = i + 1
			}
		}
	}
	if k > 0 {
		t.lineStart = true
	}
	if len(t.held)-k > maxHeld {
		k, t.lineStart = len(t.held)-maxHeld, false
	}
	return k
}

// finish is what is left to pass on at the end of the stream.
func (t *byeTail) finish() []byte {
	body, ok := t.lastLine(t.held)
	if !ok || !bytes.HasPrefix(t.held[len(body):], t.tag) {
		return t.held
	}
	if rest, ok := t.lastLine(body); ok && bytes.HasPrefix(body[len(rest):], []byte("* BYE")) {
		body = rest
	}
	return append(bytes.Clone(body), t.bye+"\r\n"...)
}

// lastLine splits b before its last line, which must end with LF; ok is
// false if b does not end a line or its last line's start is unknown.
func (t *byeTail) lastLine(b []byte) (before []byte, ok bool) {
	if !bytes.HasSuffix(b, []byte{'\n'}) {
		return nil, false
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 && !t.lineStart {
		return nil, false
	}
	return b[:i+1], true
}

// relaying notes the upstream connection of a relay that starts now, for
// goodbye, and returns it.
func (c *conn) relaying(up net.Conn) *upstreamConn {
	u := newUpstreamConn(up)
	c.byeMu.Lock()
	defer c.byeMu.Unlock()
	c.up = u
	return u
}

// relayOver notes that the relay has ended, for a goodbye waiting on it.
func (c *conn) relayOver() {
	c.byeMu.Lock()
	defer c.byeMu.Unlock()
	c.relayDone = true
	if c.relayEnded != nil {
		close(c.relayEnded)
	}
}

// goodbye ends a relayed session with bye if it can (see upstreamConn),
// waiting at most byeTimeout for the upstream to finish. It does not
// close the session.
func (c *conn) goodbye(bye string) {
	c.byeMu.Lock()
	u := c.up
	c.byeMu.Unlock()
	if u == nil || !u.logout(bye) {
		return
	}
	// The channel is made only now: a session that never says goodbye
	// (most) holds none.
	c.byeMu.Lock()
	if c.relayDone {
		c.byeMu.Unlock()
		return
	}
	if c.relayEnded == nil {
		c.relayEnded = make(chan struct{})
	}
	ended := c.relayEnded
	c.byeMu.Unlock()
	wait := time.NewTimer(byeTimeout)
	defer wait.Stop()
	select {
	case <-ended:
	case <-wait.C:
	}
}

// ShutdownExpired says "* BYE Server shutting down" to the client of a
// relayed session if it can (see goodbye) when Shutdown's grace period
// ends (proxy.ShutdownNotifier).
func (c *conn) ShutdownExpired() {
	c.goodbye("* BYE Server shutting down")
}
