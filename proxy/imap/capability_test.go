package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy/upstream"
)

// dovecotPrelogin is what Dovecot 2.3 announces before login on a
// plain port with TLS configured, plus atoms passgate must not repeat.
var dovecotPrelogin = []string{"IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+",
	"STARTTLS", "AUTH=PLAIN", "AUTH=CRAM-MD5", "LOGINDISABLED", "literal-", "X]BROKEN", "IDLE"}

// withUpstreamCaps makes the fake upstream answer the capability probe.
func withUpstreamCaps(caps []string, err error) func(*Server) {
	return func(s *Server) {
		f := s.Upstream.(*fakeUpstream)
		f.caps, f.capsErr = caps, err
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
			if n := e.up.probes.Load(); n > 1 {
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
		e.up.peer(t)
	})
}
