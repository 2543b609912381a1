package imap

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testdeadline"
	"github.com/passgate/passgate/proxy"
)

// TestPreauthDeadlineArmedOncePerCommand: an idle or trickling client
// before login is closed when one PreauthTimeout has passed since passgate
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
			dl := &testdeadline.Listener{Listener: ln}
			srv := &Server{Auth: &fakeAuth{}, Upstream: newUpstream(), AllowCleartext: true,
				Limits: proxy.Limits{PreauthTimeout: timeout}, Logger: slog.New(slog.DiscardHandler)}
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
			armed, expired := dl.Counts()
			t.Logf("closed after %v (PreauthTimeout %v); %d deadlines armed, %d expired", took.Round(time.Millisecond), timeout, armed, expired)
			if expired != 1 {
				t.Errorf("%d reads ended at a deadline before the close, want 1", expired)
			}
			if armed != tt.wantArmed {
				t.Errorf("%d read deadlines armed, want %d (one per command)", armed, tt.wantArmed)
			}
			if took < timeout {
				t.Errorf("closed after %v, before the PreauthTimeout of %v", took, timeout)
			}
		})
	}
}
