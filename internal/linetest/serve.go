package linetest

import (
	"errors"
	"net"
	"testing"

	"github.com/passgate/passgate/proxy"
)

// Server is a line front-end (pop3.Server, sieve.Server) as Serve runs it.
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// Serve runs srv on a listener at 127.0.0.1:0 and returns its address.
// When the test ends it closes srv and fails the test unless Serve
// returned proxy.ErrServerClosed.
func Serve(t testing.TB, srv Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// FuzzSession serves session to srv as one client (see Session), then
// closes srv and waits for it and for up's discarding sides; it fails the
// test if srv logged an error to errs (its Logger's handler), such as a
// recovered panic.
func FuzzSession(t testing.TB, srv Server, up *Upstream, errs *ErrorWatch, session []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	Session(t, ln.Addr().String(), session)
	srv.Close()
	<-done
	up.Wait()
	if errs.Seen() {
		t.Fatalf("the server logged an error (a panic?) on %q", session)
	}
}
