package smtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testdeadline"
	"github.com/passgate/passgate/proxy"
)

const replyTooManyConns = "421 4.7.0 Too many connections, try again later"

// connectRaw connects to addr from src (a loopback address, "" for any),
// with TLS when pool is set, without reading anything.
func connectRaw(t *testing.T, addr, src string, tlsConfig *tls.Config) *badConn {
	t.Helper()
	d := &net.Dialer{Timeout: ioTimeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	var c net.Conn
	var err error
	if tlsConfig != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConfig)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		if src != "" {
			t.Skipf("cannot connect from %s: %v", src, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &badConn{textConn: &textConn{t: t, c: c, tp: textproto.NewConn(c)}}
}

// TestConnectionLimits: over Limits.Conns, a connection gets 421 instead of
// the greeting (after the handshake on implicit TLS) and is closed; ending
// a connection frees its slot.
func TestConnectionLimits(t *testing.T) {
	cfg, pool := testCert(t)
	limit := &proxy.ConnLimiter{Max: 3, PerIP: 2}
	e := newEnv(t, nil, func(s *Server) {
		s.TLSConfig = cfg
		s.Limits.Conns = limit
	})
	tlsAddr := startPassgate(t, e.pg, true)
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	first := connectRaw(t, e.addr, "", nil)
	first.expect(220)
	connectRaw(t, tlsAddr, "", clientTLS).expect(220)
	for _, c := range []*badConn{connectRaw(t, e.addr, "", nil), connectRaw(t, tlsAddr, "", clientTLS)} {
		c.expectLine(replyTooManyConns)
		c.expectClosed()
	}
	// Ending a connection frees its slot.
	first.transactWant("QUIT", 221, "")
	first.expectClosed()
	connectRaw(t, e.addr, "", nil).expect(220)
	// The total: a second address fills it, a third is refused.
	connectRaw(t, e.addr, "127.0.0.2", nil).expect(220)
	c := connectRaw(t, e.addr, "127.0.0.3", nil)
	c.expectLine(replyTooManyConns)
	c.expectClosed()
	if total, here := limit.Open(netip.MustParseAddr("127.0.0.1")); total != 3 || here != 2 {
		t.Errorf("%d connections counted, %d from 127.0.0.1; want 3 and 2", total, here)
	}
	if logs := e.logs.String(); strings.Count(logs, "smtp connection refused: too many connections") != 3 {
		t.Errorf("refusals not logged once each:\n%s", logs)
	}
	if n := e.sink.accepts.Load(); n != 1 {
		t.Errorf("upstream dialled %d times, want only the probe", n)
	}
}

// preauthLine is the i-th of a run of harmless commands before AUTH, and
// its reply; none is a go-smtp protocol error (four of those close).
func preauthLine(i int) (cmd, reply string) {
	switch i % 4 {
	case 0:
		return "NOOP", replyNoop
	case 1:
		return "RSET", "250 2.0.0 Session reset"
	case 2:
		return "HELP", "502 5.5.1 HELP command not implemented"
	}
	return "VRFY " + appUser, "252 2.5.0 Cannot VRFY user, but will accept message"
}

// TestPreauthCommandLimit: a connection may send MaxPreauthCommands lines
// before it logs in; the next one is not read, the client gets 421.
func TestPreauthCommandLimit(t *testing.T) {
	const tooMany = "421 4.7.0 Too many commands before authentication"
	for _, tt := range []struct {
		name  string
		limit int // Server.Limits.MaxPreauthCommands
		want  int // lines answered
	}{
		{"default", 0, proxy.DefaultMaxPreauthCommands},
		{"configured", 7, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, func(s *Server) { s.Limits.MaxPreauthCommands = tt.limit })
			c := &badConn{textConn: dialText(t, e.addr)}
			var b strings.Builder
			for i := range tt.want + 5 {
				cmd, _ := preauthLine(i)
				b.WriteString(cmd + "\r\n")
			}
			c.sendRaw(b.String())
			for i := range tt.want {
				_, reply := preauthLine(i)
				c.expectLine(reply)
			}
			c.expectLine(tooMany)
			c.expectClosed()
			if logs := e.logs.String(); !strings.Contains(logs, "smtp too many commands before authentication") {
				t.Errorf("not logged:\n%s", logs)
			}
		})
	}
	t.Run("SASL responses count", func(t *testing.T) {
		e := newEnv(t, nil, func(s *Server) { s.Limits.MaxPreauthCommands = 4 })
		c := &badConn{textConn: dialText(t, e.addr)}
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("AUTH LOGIN", 334, "")
		c.transactWant(b64(appUser), 334, "")
		c.transactWant(b64("wrong"), 535, "")
		c.sendRaw("NOOP\r\n")
		c.expectLine(tooMany)
		c.expectClosed()
	})
	t.Run("AUTH as the last allowed line", func(t *testing.T) {
		e := newEnv(t, nil, func(s *Server) { s.Limits.MaxPreauthCommands = 2 })
		c := &badConn{textConn: dialText(t, e.addr)}
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant(plainIR("", appUser, appSecret), 235, "")
		for range 10 { // after AUTH the limit is gone
			c.transactWant("NOOP", 250, "")
		}
		c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	})
	t.Run("implicit TLS", func(t *testing.T) {
		cfg, pool := testCert(t)
		e := newEnv(t, nil, func(s *Server) { s.TLSConfig, s.Limits.MaxPreauthCommands = cfg, 3 })
		c := connectRaw(t, startPassgate(t, e.pg, true), "", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		c.expect(220)
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("NOOP", 250, "")
		c.transactWant("NOOP", 250, "")
		c.sendRaw("NOOP\r\n")
		c.expectLine(tooMany) // through TLS
		c.expectClosed()
	})
	t.Run("STARTTLS then EHLO", func(t *testing.T) {
		cfg, pool := testCert(t)
		e := newEnv(t, nil, func(s *Server) { s.TLSConfig, s.Limits.MaxPreauthCommands = cfg, 4 })
		c := &badConn{textConn: dialText(t, e.addr), pool: pool}
		c.transactWant("EHLO client.test", 250, "")
		c.startTLS()
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant("NOOP", 250, "")
		c.sendRaw("NOOP\r\n")
		c.expectLine(tooMany) // through TLS
		c.expectClosed()
	})
	t.Run("STARTTLS without EHLO", func(t *testing.T) {
		// go-smtp names the TLS connection to the next session only, which
		// EHLO starts: without one passgate cannot write the 421 and
		// closes without it. It never writes it in cleartext.
		cfg, pool := testCert(t)
		e := newEnv(t, nil, func(s *Server) { s.TLSConfig, s.Limits.MaxPreauthCommands = cfg, 3 })
		c := &badConn{textConn: dialText(t, e.addr), pool: pool}
		c.startTLS()
		c.transactWant("NOOP", 250, "")
		c.transactWant("NOOP", 250, "")
		c.sendRaw("NOOP\r\n")
		// EOF, or a reset when the unread NOOP was still queued; not a
		// TLS record error, which cleartext bytes would cause.
		c.c.SetReadDeadline(time.Now().Add(ioTimeout))
		if line, err := c.tp.ReadLine(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read %q, %v; want the connection closed", line, err)
		}
	})
}

// recordingConn keeps every byte read through it.
type recordingConn struct {
	net.Conn
	got []byte
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, err
}

// TestTLSOnPlainPort: a client set up for implicit TLS talks to the plain
// port. Its handshake fails on our greeting; passgate sees the ClientHello,
// answers 421 and closes instead of waiting for a command line.
func TestTLSOnPlainPort(t *testing.T) {
	e := newEnv(t, nil, nil)
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rec := &recordingConn{Conn: raw}
	tc := tls.Client(rec, &tls.Config{ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	err = tc.Handshake()
	if err == nil || isTimeout(err) {
		t.Fatalf("TLS handshake with the plain port: %v, want a failure at once", err)
	}
	raw.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err = io.Copy(io.Discard, rec); isTimeout(err) {
		t.Fatalf("passgate kept the connection open after the ClientHello (read %q)", rec.got)
	}
	want := fmt.Sprintf("220 passgate.test ESMTP Service Ready\r\n%s", replyTLSOnPlain)
	if string(rec.got) != want {
		t.Fatalf("the client received %q, want %q", rec.got, want)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "smtp client started TLS on a plain connection") {
		t.Errorf("not logged:\n%s", logs)
	}
	dialText(t, e.addr).transactWant("NOOP", 250, "")
}

// TestPreauthTimeoutDefault: with Limits.PreauthTimeout zero, the reads
// of a client that has not logged in are bounded by
// proxy.DefaultPreauthTimeout, as IMAP's are, not by the ReadTimeout of
// authenticated sessions. The deadline armed is compared, not waited for.
func TestPreauthTimeoutDefault(t *testing.T) {
	const long = 10 * time.Minute
	e := newEnv(t, nil, func(s *Server) { s.ReadTimeout, s.WriteTimeout = long, long })
	addr, dl := serveCounted(t, e.pg)
	c := &badConn{textConn: dialText(t, addr)}
	c.transactWant("NOOP", 250, "") // its read was armed before the reply
	if last, bound := dl.LastArmed(), time.Now().Add(proxy.DefaultPreauthTimeout); last.IsZero() || last.After(bound) {
		t.Errorf("read deadline before AUTH %v from now, want at most proxy.DefaultPreauthTimeout (%v)",
			time.Until(last).Round(time.Second), proxy.DefaultPreauthTimeout)
	}
}

// serveCounted serves srv on one more listener, which counts the read
// deadlines of its connections, until the test ends.
func serveCounted(t *testing.T, srv *Server) (addr string, dl *testdeadline.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl = &testdeadline.Listener{Listener: ln}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(dl) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), dl
}

// TestPreauthTimeout: before AUTH each read (and write) is bounded by
// PreauthTimeout (limits.preauth_timeout), not by the ReadTimeout of
// authenticated sessions: an idle client gets go-smtp's 421 4.4.2 and is
// closed after one timeout (one read ends at a deadline), not before it.
// After AUTH, ReadTimeout applies.
func TestPreauthTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const idle = "421 4.4.2 Idle timeout, bye bye"
	for _, tt := range []struct {
		name   string
		client func(c *badConn)
	}{
		{"idle after the greeting", func(*badConn) {}},
		{"idle after EHLO", func(c *badConn) { c.transactWant("EHLO client.test", 250, "") }},
		{"idle inside AUTH", func(c *badConn) {
			c.transactWant("EHLO client.test", 250, "")
			c.transactWant("AUTH LOGIN", 334, "")
		}},
		{"idle after a failed AUTH", func(c *badConn) {
			c.transactWant("EHLO client.test", 250, "")
			c.transactWant(plainIR("", appUser, "wrong"), 535, "")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, func(s *Server) { s.Limits.PreauthTimeout = timeout }) // ReadTimeout: ioTimeout
			addr, dl := serveCounted(t, e.pg)
			start := time.Now()
			c := &badConn{textConn: dialText(t, addr)}
			tt.client(c)
			c.expectLine(idle)
			c.expectClosed()
			took := time.Since(start)
			_, expired := dl.Counts()
			t.Logf("closed after %v (PreauthTimeout %v), %d reads ended at a deadline", took.Round(time.Millisecond), timeout, expired)
			if expired != 1 {
				t.Errorf("%d reads ended at a deadline, want 1", expired)
			}
			if took < timeout {
				t.Errorf("closed after %v, before the PreauthTimeout of %v", took, timeout)
			}
		})
	}
	t.Run("authenticated: ReadTimeout applies", func(t *testing.T) {
		e := newEnv(t, nil, func(s *Server) { s.Limits.PreauthTimeout = timeout })
		c := &badConn{textConn: dialText(t, e.addr)}
		c.transactWant("EHLO client.test", 250, "")
		c.transactWant(plainIR("", appUser, appSecret), 235, "")
		time.Sleep(3 * timeout)
		c.transactWant("NOOP", 250, "")
		c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	})
}
