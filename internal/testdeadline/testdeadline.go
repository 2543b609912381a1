// Package testdeadline counts what read deadlines do to the connections of
// a server under test: how often one was armed and how many reads ended at
// one, so that a test counts an idle client's timeouts instead of timing
// them.
package testdeadline

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Listener wraps a listener; the connections it accepts are counted
// together.
type Listener struct {
	net.Listener
	mu      sync.Mutex
	armed   int
	expired int
	last    time.Time // the last read deadline armed
}

// Accept accepts a counted connection.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, l: l}, nil
}

// Counts returns the read deadlines armed (set in the future) and the
// reads that waited until one of them expired, over every accepted
// connection. A read that fails at once because the deadline was set in
// the past is not counted: it costs no waiting.
func (l *Listener) Counts() (armed, expired int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.armed, l.expired
}

// LastArmed returns the last read deadline armed on any accepted
// connection (zero if none was): a test compares it with the timeout it
// expects instead of waiting for it.
func (l *Listener) LastArmed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

type conn struct {
	net.Conn
	l      *Listener
	future bool // the read deadline in force was set in the future; guarded by l.mu
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.mu.Lock()
		if c.future {
			c.l.expired++
			c.future = false
		}
		c.l.mu.Unlock()
	}
	return n, err
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.arm(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.arm(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) arm(t time.Time) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.future = t.After(time.Now())
	if c.future {
		c.l.armed++
		c.l.last = t
	}
}
