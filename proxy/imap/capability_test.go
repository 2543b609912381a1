package imap

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy/upstream"
)

// dovecotPrelogin is what Dovecot 2.3 announces before login on a
// plain port with TLS configured, plus atoms passgate must not repeat.
var dovecotPrelogin = []string{"IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+",
	"STARTTLS", "AUTH=PLAIN", "AUTH=CRAM-MD5", "LOGINDISABLED", "literal-", "X]BROKEN", "IDLE"}

// withUpstreamCaps makes the fake upstream answer the capability probe.
func withUpstreamCaps(caps []string, err error) func(*Server) {
	return func(s *Server) {
		f := s.Upstream.(*lt.Upstream)
		f.Caps, f.CapsErr = caps, err
	}
}

// loginOnly hides the fake upstream's Capabilities: an Upstream that
// cannot be probed.
type loginOnly struct{ Upstream }

// greetingAndCapability returns the greeting's capabilities after checking
// that CAPABILITY answers the same list.
func greetingAndCapability(t *testing.T, c *client) []string {
	t.Helper()
	caps := capsOf(t, c.line(), "* OK [CAPABILITY ")
	lines := c.expectTagged("c", "CAPABILITY", "c OK ")
	if got := strings.Fields(strings.TrimPrefix(lines[0], "* CAPABILITY ")); !slices.Equal(got, caps) {
		t.Errorf("CAPABILITY %q differs from the greeting's %q", got, caps)
	}
	return caps
}

// TestPreloginCapabilities (issue 17): before login passgate announces the
// upstream's pre-login capabilities (learnt once, when serving starts) next
// to its own, minus those it owns there; when the upstream cannot be
// probed, a default with IDLE and ENABLE. Greeting and CAPABILITY agree.
func TestPreloginCapabilities(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []func(*Server)
		want string // after passgate's own IMAP4rev1 SASL-IR LITERAL+ ID, before STARTTLS and AUTH=
	}{
		{"from the upstream", []func(*Server){withUpstreamCaps(dovecotPrelogin, nil)}, "LOGIN-REFERRALS ENABLE IDLE"},
		{"upstream with no extensions", []func(*Server){withUpstreamCaps([]string{"IMAP4rev1"}, nil)}, ""},
		{"upstream unreachable at start", []func(*Server){withUpstreamCaps(nil, fmt.Errorf("dial: %w", upstream.ErrUnavailable))},
			"IDLE ENABLE"},
		{"upstream that cannot be probed", []func(*Server){func(s *Server) { s.Upstream = loginOnly{s.Upstream} }}, "IDLE ENABLE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, append([]func(*Server){cleartext, withTLS}, tt.opts...)...)
			want := strings.Fields("IMAP4rev1 SASL-IR LITERAL+ ID " + tt.want + " STARTTLS AUTH=PLAIN AUTH=LOGIN")
			if got := greetingAndCapability(t, e.connected()); !slices.Equal(got, want) {
				t.Errorf("before login, plain: %q, want %q", got, want)
			}
			want = slices.DeleteFunc(want, func(s string) bool { return s == "STARTTLS" })
			if got := greetingAndCapability(t, e.connectedTLS()); !slices.Equal(got, want) {
				t.Errorf("before login, TLS: %q, want %q", got, want)
			}
			if n := e.up.Probes(); n > 1 {
				t.Errorf("upstream probed %d times, want once", n)
			}
		})
	}
	t.Run("after login the upstream's own list", func(t *testing.T) {
		e := newEnv(t, cleartext, withUpstreamCaps(dovecotPrelogin, nil))
		c := e.greeted()
		lines := c.expectTagged("a", "LOGIN "+appUser+" "+appSecret, "a OK ")
		if want := "a OK [CAPABILITY " + upstreamCaps + "] "; !strings.HasPrefix(lines[len(lines)-1], want) {
			t.Errorf("login reply %q, want it to start with %q", lines, want)
		}
		e.peer(t)
	})
}

// TestRefreshCapabilities: after the upstream changed (a reload calls
// RefreshCapabilities), new connections announce its new pre-login list;
// a probe that fails then keeps the last list learnt, not the defaults.
// Clients connect throughout (under -race, the list changes while
// connections read it).
func TestRefreshCapabilities(t *testing.T) {
	e := newEnv(t, cleartext, withUpstreamCaps([]string{"IMAP4rev1", "IDLE"}, nil))
	own := "IMAP4rev1 SASL-IR LITERAL+ ID "
	if got, want := greetingAndCapability(t, e.connected()), strings.Fields(own+"IDLE AUTH=PLAIN AUTH=LOGIN"); !slices.Equal(got, want) {
		t.Fatalf("before the refresh: %q, want %q", got, want)
	}

	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for ; n < 500; n++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	e.up.Caps = []string{"IMAP4rev1", "IDLE", "MOVE", "X-UPGRADED"}
	e.srv.RefreshCapabilities(t.Context())
	close(stop)
	t.Logf("%d connections during the refresh", <-done)
	upgraded := strings.Fields(own + "IDLE MOVE X-UPGRADED AUTH=PLAIN AUTH=LOGIN")
	if got := greetingAndCapability(t, e.connected()); !slices.Equal(got, upgraded) {
		t.Errorf("after the refresh: %q, want %q", got, upgraded)
	}

	e.up.Caps, e.up.CapsErr = nil, fmt.Errorf("dial: %w", upstream.ErrUnavailable)
	e.srv.RefreshCapabilities(t.Context())
	if got := greetingAndCapability(t, e.connected()); !slices.Equal(got, upgraded) {
		t.Errorf("after a failed refresh: %q, want the last list learnt %q", got, upgraded)
	}
	if n := e.up.Probes(); n != 3 {
		t.Errorf("upstream probed %d times, want 3 (start and two refreshes)", n)
	}
}
