package imap

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects a client to the server.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeUpstream logs everyone in to a net.Pipe whose far end discards.
type pipeUpstream struct{ wg sync.WaitGroup }

func (u *pipeUpstream) Login(ctx context.Context, l upstream.Login) (*upstream.Conn, error) {
	near, far := net.Pipe()
	u.wg.Go(func() {
		io.Copy(io.Discard, far)
		far.Close()
	})
	return &upstream.Conn{Conn: near, Capability: "IMAP4rev1", Text: "Logged in"}, nil
}

func (u *pipeUpstream) NeedsClientSecret() bool { return false }

// FuzzPreauth feeds arbitrary bytes to a server as one client session:
// the server must neither panic nor hang, whatever it receives. Seeds are
// in testdata/fuzz/FuzzPreauth.
func FuzzPreauth(f *testing.F) {
	f.Fuzz(fuzzSession)
}

// fuzzSession runs one client session over net.Pipe.
func fuzzSession(t *testing.T, session []byte) {
	up := &pipeUpstream{}
	srv := &Server{
		Auth:           &fakeAuth{},
		Upstream:       up,
		TLSConfig:      testcert.ServerConfig(),
		AllowCleartext: true,
		Limits:         proxy.Limits{PreauthTimeout: 5 * time.Second, MaxLine: 256, MaxLiteral: 64},
		Logger:         slog.New(slog.DiscardHandler),
	}
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c := ln.dial()
	// Once the greeting is read the connection is tracked by srv.life.
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	drained := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(drained)
	}()
	c.Write(session) // fails once the server hangs up: fine
	c.Close()

	// The connection must end on its own (EOF, error or deadline),
	// before Shutdown would interrupt it.
	ended := make(chan struct{})
	go func() {
		srv.life.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatalf("server hung on %q", session)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-served
	<-drained
	up.wg.Wait()
}
