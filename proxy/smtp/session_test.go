package smtp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// signalRegistry wraps sessions.Registry and reports each removal.
type signalRegistry struct {
	*sessions.Registry
	removed chan struct{}
}

func (r signalRegistry) Add(ctx context.Context, s sessions.Session, end func()) (func(), error) {
	remove, err := r.Registry.Add(ctx, s, end)
	if err != nil {
		return nil, err
	}
	return func() {
		remove()
		r.removed <- struct{}{}
	}, nil
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(ioTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestSessionsRegistered(t *testing.T) {
	reg := signalRegistry{&sessions.Registry{}, make(chan struct{}, 16)}
	e := newEnv(t, func(s *sink) { s.onLogout = make(chan struct{}, 16) }, func(s *Server) { s.Sessions = reg })

	t.Run("QUIT unregisters", func(t *testing.T) {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClient(conn)
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", appUser, appSecret)); err != nil {
			t.Fatal(err)
		}
		ss := reg.Sessions()
		if len(ss) != 1 {
			t.Fatalf("%d sessions registered, want 1", len(ss))
		}
		s := ss[0]
		local := netip.MustParseAddrPort(conn.LocalAddr().String())
		if s.Protocol != "smtp" || s.Login.Username != appUser || s.Login.AppPasswordID != appID ||
			s.Remote != local || s.ID == "" || s.Started.IsZero() {
			t.Errorf("session %+v (client %s)", s, local)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		waitChan(t, reg.removed, "removal")
		if n := len(reg.Sessions()); n != 0 {
			t.Errorf("%d sessions after QUIT", n)
		}
	})

	t.Run("end closes both connections", func(t *testing.T) {
		c := login(t, e.addr)
		if n := reg.End(store.Event{Kind: store.EventAccountChanged, Username: appUser}); n != 1 {
			t.Fatalf("End ended %d sessions, want 1", n)
		}
		if err := c.Noop(); err == nil {
			t.Error("client connection still open after the session was ended")
		}
		waitChan(t, reg.removed, "removal")
		e.sink.waitAllUpstreamEnded(t)
	})
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := login(t, e.addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for the session: close it
	if err := e.pg.Shutdown(ctx); err != context.Canceled {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	if err := c.Noop(); err == nil {
		t.Error("client connection open after Shutdown")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pg.Serve(ln); !errors.Is(err, proxy.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Serve after Shutdown left its listener open")
	}
	if err := e.pg.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

func TestServeRefusesMisconfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  *Server
		want string
	}{
		{"no auth", &Server{Upstream: &upstream.SMTP{Address: "127.0.0.1:1", Mode: upstream.ModeXCLIENT}}, "Authenticator"},
		{"no upstream", &Server{Auth: &fakeAuth{}}, "upstream"},
		{"bad address", &Server{Auth: &fakeAuth{}, Upstream: &upstream.SMTP{Address: "nowhere", Mode: upstream.ModeXCLIENT}}, "address"},
		{"ServeTLS without TLSConfig", &Server{Auth: &fakeAuth{}, Upstream: &upstream.SMTP{Address: "127.0.0.1:1", Mode: upstream.ModeXCLIENT}}, "TLSConfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(tc.name, "ServeTLS") {
				err = tc.srv.ServeTLS(nil)
			} else {
				err = tc.srv.Serve(nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
