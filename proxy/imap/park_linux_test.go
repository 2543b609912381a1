package imap

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy"
)

// shortPark makes silent sessions park after a few milliseconds (tests in
// this package run one at a time).
func shortPark(t *testing.T) {
	old := proxy.ParkAfter
	proxy.ParkAfter = 5 * time.Millisecond
	t.Cleanup(func() { proxy.ParkAfter = old })
}

// waitParked waits until n relay directions are parked (a hang guard, not
// a timing assertion).
func waitParked(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); proxy.ParkedDirections() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d relay directions parked, want %d", proxy.ParkedDirections(), n)
		}
	}
}

// TestParkedSessionRevoked: revoking the app password of a parked session
// (no goroutine reads either leg) still says "* BYE" to its client: the
// revocation wakes the upstream side to read the upstream's goodbye.
func TestParkedSessionRevoked(t *testing.T) {
	shortPark(t)
	db, reg, _ := sessionStore(t)
	e := newEnv(t, cleartext, func(s *Server) { s.Sessions = reg })
	c, peer := e.loggedIn()
	c.expect("* 3 EXISTS")
	waitParked(t, 2)
	if err := db.RevokeAppPassword(t.Context(), appUser, appID); err != nil {
		t.Fatal(err)
	}
	answerLogout(t, peer, false, "")
	c.expect(revokedBye)
	c.expectClosed()
}

// TestParkedSessionShutdown: when Shutdown's grace period ends, a parked
// session in IDLE, plain or TLS, is resumed, ends IDLE upstream and gets
// "* BYE Server shutting down"; a parked session also still relays.
func TestParkedSessionShutdown(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			shortPark(t)
			e := newEnv(t, cleartext, withTLS)
			var c *client
			if useTLS {
				c = e.greetedTLS()
			} else {
				c = e.greeted()
			}
			c.expectTagged("a", "LOGIN alice@example.org "+appSecret, "a OK ")
			peer := e.peer(t)
			c.expect("* 3 EXISTS")
			waitParked(t, 2)
			c.send("b IDLE\r\n")
			peer.expect("b IDLE")
			waitParked(t, 2)
			peer.send("+ idling\r\n")
			c.expect("+ idling")
			waitParked(t, 2)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			go func() { done <- e.srv.Shutdown(ctx) }()
			answerLogout(t, peer, true, "b OK Idle completed.\r\n")
			c.expect("b OK Idle completed.")
			c.expect("* BYE Server shutting down")
			c.expectClosed()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestParkedSessionClosedMidCommand: a parked session whose client is in
// the middle of a command gets no goodbye when Shutdown's grace period
// ends, and Close still ends it: both legs close and nothing stays parked
// (a session left parked on closed sockets would never end).
func TestParkedSessionClosedMidCommand(t *testing.T) {
	shortPark(t)
	e := newEnv(t, cleartext)
	c, peer := e.loggedIn()
	c.expect("* 3 EXISTS")
	c.send("c NOO")
	half := make([]byte, len("c NOO"))
	peer.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(peer.r, half); err != nil || string(half) != "c NOO" {
		t.Fatalf("upstream got %q, %v", half, err)
	}
	waitParked(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v", err)
	}
	c.expectClosed()
	for deadline := time.Now().Add(time.Minute); proxy.ParkedDirections() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d relay directions still parked after Close", proxy.ParkedDirections())
		}
	}
}
