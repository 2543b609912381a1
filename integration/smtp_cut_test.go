package integration

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSMTPUpstreamGoesAway cuts passgate's connection to Dovecot in the
// middle of a session (a TCP relay in the test process stands between
// them): after AUTH, with or without the upstream accepting new
// connections, and in the middle of DATA. The client must get a 250 only for
// a message the upstream took, and otherwise a temporary (4xx) failure and
// nothing in the sink.
func TestSMTPUpstreamGoesAway(t *testing.T) {
	d, sink := sharedSink(t)
	tests := []struct {
		name       string
		refuseNew  bool // the relay also stops accepting (upstream down)
		duringDATA bool
		delivered  bool // the message must reach the sink (passgate reconnected)
	}{
		{"connection lost after AUTH, upstream still up", false, false, true},
		{"upstream down after AUTH", true, false, false},
		{"connection lost during DATA", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := startTCPRelay(t, d.SubmitAddr)
			g := startSMTPGate(t, d, smtpOpts{Upstream: relay.Addr})
			a := newAccount(t, d, g.Passgate, true)
			rcpt := uniqueRcpt("cut")
			msg := smtpMessage(a.User, rcpt, tt.name)

			c := dialSMTPTLS(t, g.SubmitsAddr, g.tlsConfig(t))
			c.transact("EHLO raw.client.test")
			before := relay.accepted.Load()
			if r := c.transact("AUTH PLAIN " + saslPlain("", a.User, a.AppPass)); r.Code != 235 {
				t.Fatalf("AUTH: %s", r)
			}
			if n := relay.accepted.Load() - before; n != 1 {
				t.Fatalf("passgate opened %d upstream connections for AUTH, want 1", n)
			}
			if !tt.duringDATA {
				relay.cut(tt.refuseNew)
			}
			replies := []smtpReply{}
			for _, cmd := range []string{"MAIL FROM:<" + a.User + ">", "RCPT TO:<" + rcpt + ">", "DATA"} {
				r := c.transact(cmd)
				replies = append(replies, r)
				if r.Code/100 != 2 && r.Code != 354 {
					break
				}
			}
			last := replies[len(replies)-1]
			if last.Code == 354 {
				c.writeData(msg)
				if tt.duringDATA {
					relay.cut(false)
					// More than the socket buffers hold, so that passgate
					// notices while the client is still sending.
					c.writeData(bigMessage(a.User, rcpt, "the rest", 4<<20))
				}
				last = c.transact(".")
				replies = append(replies, last)
			}
			t.Logf("passgate answered %v", replies)
			if tt.delivered {
				if last.Code != 250 {
					t.Fatalf("after a lost upstream connection: %v, want the message taken (250) over a new one", replies)
				}
				checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
				return
			}
			if last.Code/100 != 4 {
				t.Fatalf("after the upstream went away: %v, want a temporary (4xx) failure", replies)
			}
			if r := c.transact("NOOP"); r.Code != 250 {
				t.Errorf("NOOP after the failure: %s, want the client session kept", r)
			}
			if n := sink.count(rcpt); n != 0 {
				t.Fatalf("the sink holds %d messages the client was not told were taken", n)
			}
			assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
		})
	}
}

// tcpRelay forwards connections to an address, and can cut them.
type tcpRelay struct {
	Addr   string
	target string
	ln     net.Listener

	accepted atomic.Int64 // connections accepted so far

	mu     sync.Mutex
	pairs  map[[2]net.Conn]struct{} // client side, target side
	closed bool
}

// startTCPRelay listens on 127.0.0.1 and forwards every connection to
// target until the test ends.
func startTCPRelay(t testing.TB, target string) *tcpRelay {
	t.Helper()
	return startTCPRelayAt(t, "127.0.0.1:0", target)
}

// startTCPRelayAt is startTCPRelay listening on listen (the address of a
// relay that cut(true) stopped: it takes over).
func startTCPRelayAt(t testing.TB, listen, target string) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	r := &tcpRelay{Addr: ln.Addr().String(), target: target, ln: ln, pairs: map[[2]net.Conn]struct{}{}}
	go r.accept()
	t.Cleanup(func() { r.cut(true) })
	return r
}

func (r *tcpRelay) accept() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		out, err := net.DialTimeout("tcp", r.target, ioTimeout)
		if err != nil {
			in.Close()
			continue
		}
		pair := [2]net.Conn{in, out}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		r.pairs[pair] = struct{}{}
		r.mu.Unlock()
		done := make(chan struct{}, 2)
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			in.Close()
			out.Close()
			done <- struct{}{}
		}
		go pipe(out, in)
		go pipe(in, out)
		go func() {
			<-done
			<-done
			r.mu.Lock()
			delete(r.pairs, pair)
			r.mu.Unlock()
		}()
	}
}

// cut closes every connection; with refuseNew the relay also stops
// listening, so that connecting to it is refused.
func (r *tcpRelay) cut(refuseNew bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.pairs {
		p[0].Close()
		p[1].Close()
	}
	if refuseNew && !r.closed {
		r.closed = true
		r.ln.Close()
	}
}

// writeData sends message lines in DATA, dot-stuffed (RFC 5321 §4.5.2),
// within ioTimeout; the caller ends DATA with transact(".").
func (c *rawSMTP) writeData(msg []byte) {
	c.t.Helper()
	stuffed := bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(stuffed, []byte(".")) {
		stuffed = append([]byte("."), stuffed...)
	}
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write(stuffed); err != nil {
		c.t.Fatalf("write %d bytes of DATA: %v", len(stuffed), err)
	}
}
