package smtp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy"
)

// TestServeEndsWithErrServerClosed: as net/http's, Serve and ServeTLS
// return ErrServerClosed when Shutdown or Close ends them, and at once when
// called afterwards; Close also ends an open session, Shutdown waits for
// it.
func TestServeEndsWithErrServerClosed(t *testing.T) {
	for _, stop := range []string{"Shutdown", "Close"} {
		t.Run(stop, func(t *testing.T) {
			cfg, _ := testCert(t)
			e := newEnv(t, nil, func(s *Server) { s.TLSConfig = cfg })
			// Serve is running once it greets a client.
			dialText(t, e.addr).transactWant("QUIT", 221, "")
			tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- e.pg.ServeTLS(tlsLn) }()
			login(t, e.addr) // a session left open

			var stopErr error
			if stop == "Shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				stopErr = e.pg.Shutdown(ctx) // the open session outlives ctx
				if !errors.Is(stopErr, context.DeadlineExceeded) {
					t.Errorf("Shutdown with a session open: %v, want context.DeadlineExceeded", stopErr)
				}
			} else if stopErr = e.pg.Close(); stopErr != nil {
				t.Errorf("Close: %v", stopErr)
			}
			select {
			case err := <-served:
				if !errors.Is(err, proxy.ErrServerClosed) {
					t.Errorf("ServeTLS ended by %s returned %v, want ErrServerClosed", stop, err)
				}
			case <-time.After(ioTimeout):
				t.Fatalf("ServeTLS still running after %s", stop)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.pg.Serve(ln); !errors.Is(err, proxy.ErrServerClosed) {
				t.Errorf("Serve after %s returned %v, want ErrServerClosed", stop, err)
			}
		})
	}
}
