package smtp

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestHealthCheckProbeIsQuiet (issue 14 item 9): a TCP health check
// (connect, close before or after the greeting) logged a WARN per probe.
func TestHealthCheckProbeIsQuiet(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.TLSConfig, _ = testCert(t) })
	tlsAddr := startPassgate(t, e.pg, true)
	for i := range 8 {
		addr := e.addr
		if i >= 4 {
			addr = tlsAddr // port 465: the probe ends the TLS handshake
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset, as HAProxy's check sends
		}
		c.Close()
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	c.Read(make([]byte, 512)) // the greeting
	c.Close()
	// A client that speaks, so that the probes' lines (if any) are written.
	dialText(t, e.addr).transactWant("NOOP", 250, "")
	time.Sleep(100 * time.Millisecond) // let the probes' goroutines end; nothing measured
	if logs := e.logs.String(); strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("health-check probes logged warnings:\n%s", logs)
	}
}

// TestDefaultDomainSender (issue 14 item 9): an account named like its
// upstream login ("alice") got 553 for every sender until an alias was
// added; smtp.default_domain gives it alice@domain.
func TestDefaultDomainSender(t *testing.T) {
	for _, tc := range []struct {
		domain, user, from string
		ok                 bool
	}{
		{"example.org", "alice", "Alice@Example.org", true},
		{"example.org", "alice", "alice@example.net", false},
		{"example.org", "alice@example.net", "alice@example.net@example.org", false},
		{"", "alice", "alice@example.org", false},
	} {
		ss := &session{srv: &Server{CheckSender: true, DefaultDomain: tc.domain}}
		if err := ss.checkSender(tc.user, tc.from); (err == nil) != tc.ok {
			t.Errorf("domain %q, user %q, MAIL FROM %q: err = %v, want ok %v", tc.domain, tc.user, tc.from, err, tc.ok)
		}
	}
}
