package imap

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func capsOf(t *testing.T, line, prefix string) []string {
	t.Helper()
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		t.Fatalf("%q does not start with %q", line, prefix)
	}
	rest, _, _ = strings.Cut(rest, "]")
	return strings.Fields(rest)
}

func TestGreetingCapabilities(t *testing.T) {
	tests := []struct {
		name     string
		opts     []func(*Server)
		implicit bool
		want     []string
		notWant  []string
	}{
		{"starttls, no cleartext", []func(*Server){withTLS}, false,
			[]string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "STARTTLS", "LOGINDISABLED"},
			[]string{"AUTH=PLAIN", "AUTH=LOGIN"}},
		{"cleartext, no tls", []func(*Server){cleartext}, false,
			[]string{"IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN"},
			[]string{"STARTTLS", "LOGINDISABLED"}},
		{"cleartext and starttls", []func(*Server){cleartext, withTLS}, false,
			[]string{"STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"},
			[]string{"LOGINDISABLED"}},
		{"implicit tls", []func(*Server){withTLS}, true,
			[]string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "AUTH=PLAIN", "AUTH=LOGIN"},
			[]string{"STARTTLS", "LOGINDISABLED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			var c *client
			if tt.implicit {
				c = e.connectedTLS()
			} else {
				c = e.connected()
			}
			greeting := c.line()
			if !strings.HasSuffix(greeting, "] passgate ready") {
				t.Errorf("greeting %q does not end with \"] passgate ready\"", greeting)
			}
			caps := capsOf(t, greeting, "* OK [CAPABILITY ")
			lines := c.expectTagged("b", "CAPABILITY", "b OK ")
			if got := strings.Fields(strings.TrimPrefix(lines[0], "* CAPABILITY ")); !slices.Equal(got, caps) {
				t.Errorf("CAPABILITY %q differs from the greeting's %q", got, caps)
			}
			for _, w := range tt.want {
				if !slices.Contains(caps, w) {
					t.Errorf("capabilities %q lack %s", caps, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(caps, w) {
					t.Errorf("capabilities %q have %s", caps, w)
				}
			}
		})
	}
}

func TestGreetingHostname(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Hostname = "imap.example.org" })
	c := e.connected()
	if l := c.line(); !strings.HasSuffix(l, "] imap.example.org ready") {
		t.Errorf("greeting %q does not name the host", l)
	}
}

func TestServeRefusesMisconfiguration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name  string
		srv   *Server
		serve func(*Server, net.Listener) error
		want  string
	}{
		{"no login possible", &Server{Auth: &fakeAuth{}, Upstream: newUpstream()}, (*Server).Serve, "AllowCleartext"},
		{"ServeTLS without TLSConfig", &Server{Auth: &fakeAuth{}, Upstream: newUpstream()}, (*Server).ServeTLS, "TLSConfig"},
		{"no Auth", &Server{Upstream: newUpstream(), AllowCleartext: true}, (*Server).Serve, "Auth"},
		{"no Upstream", &Server{Auth: &fakeAuth{}, AllowCleartext: true}, (*Server).Serve, "Upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.serve(tt.srv, ln)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestAnyStateCommands(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.greeted()
	t.Run("CAPABILITY", func(t *testing.T) {
		lines := c.expectTagged("a1", "CAPABILITY", "a1 OK ")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "* CAPABILITY IMAP4rev1 ") {
			t.Errorf("got %q", lines)
		}
	})
	t.Run("capability lower case", func(t *testing.T) {
		c.expectTagged("a2", "capability", "a2 OK ")
	})
	t.Run("NOOP", func(t *testing.T) {
		if lines := c.expectTagged("a3", "NOOP", "a3 OK "); len(lines) != 1 {
			t.Errorf("got %q", lines)
		}
	})
	t.Run("arguments refused", func(t *testing.T) {
		c.expectTagged("a4", "NOOP now", "a4 BAD ")
		c.expectTagged("a5", "CAPABILITY please", "a5 BAD ")
	})
	t.Run("LOGOUT", func(t *testing.T) {
		lines := c.transact("a6", "LOGOUT")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "* BYE ") || !strings.HasPrefix(lines[1], "a6 OK ") {
			t.Fatalf("got %q, want BYE then a6 OK", lines)
		}
		c.expectClosed()
	})
	if n := len(e.auth.all()); n != 0 {
		t.Errorf("Verify called %d times", n)
	}
}

func TestPreauthTimeout(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.PreauthTimeout = 50 * time.Millisecond })
	t.Run("idle", func(t *testing.T) {
		c := e.greeted()
		c.expect("* BYE Autologout; idle for too long")
		c.expectClosed()
	})
	t.Run("inside a literal", func(t *testing.T) {
		c := e.greeted()
		c.send("a LOGIN {5}\r\n")
		c.expectPrefix("+ ")
		c.send("al")
		c.expect("* BYE Autologout; idle for too long")
		c.expectClosed()
	})
	t.Run("inside a line", func(t *testing.T) {
		c := e.greeted()
		c.send("a NOO")
		c.expect("* BYE Autologout; idle for too long")
		c.expectClosed()
	})
}

func TestPanicIsRecovered(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.greeted()
	c.send(`a LOGIN panicky@example.org "s3cret-in-panic"` + "\r\n")
	c.expect("* BYE Internal error")
	c.expectClosed()
	logs := e.logs.String()
	if !strings.Contains(logs, "panicked") {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret-in-panic") {
		t.Errorf("the secret in the panic value was logged:\n%s", logs)
	}
	// The server still serves.
	c2, _ := e.loggedIn()
	c2.conn.Close()
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, cleartext)
	preauth := e.greeted()
	relayed, peer := e.loggedIn()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()

	// The pre-auth client is told and disconnected at once.
	preauth.expect("* BYE Server shutting down")
	preauth.expectClosed()
	// New connections are refused.
	if c, err := net.Dial("tcp", e.addr); err == nil {
		c.Close()
		t.Error("dial after Shutdown succeeded")
	}
	// The relayed session keeps working while Shutdown waits.
	relayed.send("b NOOP\r\n")
	peer.expect("b NOOP")
	relayed.expectPrefix("* 3 EXISTS")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a session was relayed", err)
	default:
	}
	// When ctx ends, the relayed session is told (the client is between
	// two commands: passgate logs out upstream and turns the upstream's
	// goodbye into its own) and closed.
	cancel()
	answerLogout(t, peer, false, "")
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown returned %v, want context.Canceled", err)
	}
	relayed.expect("* BYE Server shutting down")
	relayed.expectClosed()
}
