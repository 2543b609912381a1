package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testleak"
)

func TestMain(m *testing.M) { testleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(PollerFunction)) }

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		d.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { d.Close(); r.c.Close() })
	return d.(*net.TCPConn), r.c.(*net.TCPConn)
}

// session is one Splice under test: the test plays the client application
// and the upstream server.
type session struct {
	client   net.Conn // the client application's end
	upstream net.Conn // the upstream server's end
	result   chan error
	cancel   context.CancelFunc
}

// legs builds the two TCP pairs; the proxy's ends are returned as legs.
func legs(t testing.TB) (clientApp, proxyClient, proxyUp, upstreamApp *net.TCPConn) {
	clientApp, proxyClient = tcpPair(t)
	proxyUp, upstreamApp = tcpPair(t)
	return
}

// start runs Splice in a goroutine; the test must read s.result (wait does).
func start(t testing.TB, client net.Conn, cl, up Leg, upstream net.Conn, idle time.Duration) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{client: client, upstream: upstream, result: make(chan error, 1), cancel: cancel}
	go func() { s.result <- Splice(ctx, cl, up, idle) }()
	t.Cleanup(cancel)
	return s
}

// wait returns Splice's result, failing the test if it takes absurdly long
// (a hang, not a timing assertion).
func (s *session) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.result:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Splice did not return")
		return nil
	}
}

// tlsPair wraps a TCP pair in TLS (dialed end is the TLS client) and
// completes the handshake.
func tlsPair(t testing.TB, dialed, accepted net.Conn) (client, server *tls.Conn) {
	t.Helper()
	sc, cc := testcert.ServerConfig(), testcert.ClientConfig("127.0.0.1")
	client, server = tls.Client(dialed, cc), tls.Server(accepted, sc)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return client, server
}
