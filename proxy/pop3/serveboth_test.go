package pop3

import (
	"net"
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
)

// TestServeAndServeTLSTogether: the two listeners of one server (110 and
// 995) start at once, as serve does; run with -race.
func TestServeAndServeTLSTogether(t *testing.T) {
	srv := &Server{Auth: &lt.Auth{}, Upstream: &lt.Upstream{}, TLSConfig: testcert.ServerConfig()}
	done := make(chan error, 2)
	for _, serve := range []func(net.Listener) error{srv.Serve, srv.ServeTLS} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- serve(ln) }()
	}
	srv.Close()
	for range 2 {
		if err := <-done; err != proxy.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}
}
