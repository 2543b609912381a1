package imap

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// deadlineListener records, for the connections it accepts, how often a
// read deadline was armed (set in the future) and how many reads ended at
// one: what an idle client costs, counted rather than timed.
type deadlineListener struct {
	net.Listener
	mu      sync.Mutex
	armed   int
	expired int
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, l: l}, nil
}

func (l *deadlineListener) counts() (armed, expired int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.armed, l.expired
}

type deadlineConn struct {
	net.Conn
	l *deadlineListener
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.mu.Lock()
		c.l.expired++
		c.l.mu.Unlock()
	}
	return n, err
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.l.mu.Lock()
		c.l.armed++
		c.l.mu.Unlock()
	}
	return c.Conn.SetReadDeadline(t)
}

// TestPreauthDeadlineArmedOncePerCommand: an idle or trickling client
// before login is closed when one ReadTimeout has passed since passgate
// began reading its command, not two: the deadline is armed once per
// command (its literals included), and a read that hit it is not retried.
func TestPreauthDeadlineArmedOncePerCommand(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name      string
		client    func(c *client)
		wantArmed int // deadlines armed after the greeting
	}{
		{"idle after the greeting", func(c *client) {}, 1},
		{"idle after one command", func(c *client) { c.expectTagged("a", "NOOP", "a OK ") }, 2},
		{"idle inside a command line", func(c *client) { c.send("a NOO") }, 1},
		{"idle after a literal", func(c *client) {
			c.send("a LOGIN {17}\r\n")
			c.expectPrefix("+ ")
			c.send(appUser + " {3}\r\n")
			c.expectPrefix("+ ")
			c.send("pw")
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dl := &deadlineListener{Listener: ln}
			srv := &Server{Auth: &fakeAuth{}, Upstream: newFakeUpstream(), AllowCleartext: true,
				ReadTimeout: timeout, Logger: slog.New(slog.DiscardHandler)}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(dl) }()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				defer cancel()
				srv.Shutdown(ctx)
				<-served
			})

			start := time.Now()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c := &client{t: t, conn: nc, r: bufio.NewReader(nc)}
			c.expectPrefix("* OK ")
			tt.client(c)
			c.expect("* BYE Autologout; idle for too long")
			c.expectClosed()
			took := time.Since(start)
			armed, expired := dl.counts()
			t.Logf("closed after %v (ReadTimeout %v); %d deadlines armed, %d expired", took.Round(time.Millisecond), timeout, armed, expired)
			if expired != 1 {
				t.Errorf("%d reads ended at a deadline before the close, want 1", expired)
			}
			if armed != tt.wantArmed {
				t.Errorf("%d read deadlines armed, want %d (one per command)", armed, tt.wantArmed)
			}
			if took < timeout {
				t.Errorf("closed after %v, before the ReadTimeout of %v", took, timeout)
			}
		})
	}
}
