package imap

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/passgate/passgate/authn"
	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/store"
)

const okAlice = "a OK [CAPABILITY " + upstreamCaps + "] Logged in as alice@example.org"

func TestLogin(t *testing.T) {
	tests := []struct {
		name       string
		exchange   func(c *client) // sends the LOGIN, stops before the tagged reply
		user       string          // as the Attempt must carry it
		secret     string
		upstreamAs string
	}{
		{"atoms", func(c *client) {
			c.send("a LOGIN alice@example.org " + appSecret + "\r\n")
		}, appUser, appSecret, appUser},
		{"quoted", func(c *client) {
			c.send(`a login "alice@example.org" "` + appSecret + "\"\r\n")
		}, appUser, appSecret, appUser},
		{"quoted with escapes", func(c *client) {
			c.send(`a LOGIN esc@example.org "we\"ird\\ pass"` + "\r\n")
		}, escUser, escSecret, escUser},
		{"synchronising literals", func(c *client) {
			c.send("a LOGIN {17}\r\n")
			c.expect("+ Ready for literal data")
			c.send(fmt.Sprintf("alice@example.org {%d}\r\n", len(escSecret)))
			c.expect("+ Ready for literal data")
			c.send(escSecret + "\r\n")
		}, appUser, escSecret, ""},
		{"non-synchronising literals", func(c *client) {
			c.send(fmt.Sprintf("a LOGIN {17+}\r\nalice@example.org {%d+}\r\n%s\r\n", len(appSecret), appSecret))
		}, appUser, appSecret, appUser},
		{"upper-case user is normalised for the upstream", func(c *client) {
			c.send("a LOGIN ALICE@Example.org " + appSecret + "\r\n")
		}, "ALICE@Example.org", appSecret, appUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext)
			c := e.greeted()
			tt.exchange(c)
			got := c.line()
			if tt.upstreamAs == "" {
				// escSecret is not alice's secret: a refusal, but the
				// Attempt shows the literal was read right.
				if got != "a NO [AUTHENTICATIONFAILED] Invalid credentials" {
					t.Fatalf("got %q", got)
				}
			} else if want := "a OK [CAPABILITY " + upstreamCaps + "] Logged in as " + tt.upstreamAs; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			a := e.auth.last(t)
			want := authn.Attempt{Username: tt.user, Secret: tt.secret, Protocol: store.ScopeIMAP, RemoteIP: loopback, Mechanism: "LOGIN",
				SessionID: a.SessionID,                                                  // random; guard_test.go checks it
				Device:    store.Device{Network: netip.MustParsePrefix("127.0.0.0/24")}} // no ID, no TLS
			if a != want {
				t.Errorf("Attempt = %+v, want %+v", a, want)
			}
			if tt.upstreamAs == "" {
				return
			}
			logins := e.up.Logins()
			if len(logins) != 1 || logins[0].Username != tt.upstreamAs || logins[0].Password != "" {
				t.Errorf("upstream logins %+v, want one as %s without password", logins, tt.upstreamAs)
			}
			peer := e.peer(t)
			c.send("b NOOP\r\n")
			peer.expect("b NOOP")
		})
	}
}

func TestRelay(t *testing.T) {
	e := newEnv(t, cleartext, func(s *Server) { s.Upstream.(*lt.Upstream).Passthrough = true })
	c := e.greeted()
	c.expectTagged("i", `ID ("name" "Thunderbird" "version" "128.1")`, "i OK ")
	// A client pipelining its first command behind LOGIN (RFC 3501 §5.5):
	// those bytes belong to the upstream.
	c.send("a LOGIN alice@example.org " + appSecret + "\r\nb SELECT INBOX\r\n")
	c.expect(okAlice)
	peer := e.peer(t)
	peer.expect("b SELECT INBOX")
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))
	peer.send("* FLAGS (\\Seen)\r\nb OK [READ-WRITE] SELECT completed\r\n")
	c.expect(`* FLAGS (\Seen)`)
	c.expect("b OK [READ-WRITE] SELECT completed")

	l := e.up.Logins()[0]
	if l.Password != appSecret || l.ClientID != "Thunderbird/128.1" || l.ClientIP.String() != c.conn.LocalAddr().String() {
		t.Errorf("upstream login %+v: want pass-through secret, client ID and the client's address %s", l, c.conn.LocalAddr())
	}
	if a := e.auth.last(t); a.Client != "Thunderbird/128.1" {
		t.Errorf("Attempt.Client = %q", a.Client)
	}

	// Bulk bytes both ways, then the client's close reaches the upstream.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	go func() { c.conn.Write(payload) }()
	got := make([]byte, len(payload))
	peer.conn.SetReadDeadline(deadline())
	if _, err := io.ReadFull(peer.r, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("upstream got %d bytes, err %v", len(got), err)
	}
	c.conn.Close()
	peer.expectClosed()
}

func TestLoginFailures(t *testing.T) {
	const portalMsg = "Application password required: create one at https://portal.example.org"
	tests := []struct {
		name     string
		opts     []func(*Server)
		login    string
		want     string
		upstream bool // whether the upstream must have been asked
	}{
		{"bad secret", nil, "alice@example.org wrong-secret",
			"a NO [AUTHENTICATIONFAILED] Invalid credentials", false},
		{"unknown user", nil, "nobody@example.org " + appSecret,
			"a NO [AUTHENTICATIONFAILED] Invalid credentials", false},
		{"primary password of an MFA account", nil, "mfa@example.org " + mfaSecret,
			"a NO [ALERT] " + proxy.MFAText("", ""), false},
		{"MFA with the configured message", []func(*Server){func(s *Server) { s.MFAMessage = portalMsg }},
			"mfa@example.org " + mfaSecret, "a NO [ALERT] " + portalMsg, false},
		{"authenticator error", nil, "broken@example.org " + appSecret,
			"a NO [UNAVAILABLE] Authentication service unavailable, try again later", false},
		{"upstream unavailable", nil, "down@example.org " + appSecret,
			"a NO [UNAVAILABLE] Mail server unavailable, try again later", true},
		{"upstream refused", nil, "refused@example.org " + appSecret,
			"a NO [AUTHORIZATIONFAILED] Mail server refused the login", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, append([]func(*Server){cleartext}, tt.opts...)...)
			c := e.greeted()
			lines := c.transact("a", "LOGIN "+tt.login)
			if len(lines) != 1 || lines[0] != tt.want {
				t.Fatalf("got %q, want %q", lines, tt.want)
			}
			if n := len(e.up.Logins()); (n > 0) != tt.upstream {
				t.Errorf("upstream asked %d times, want asked: %v", n, tt.upstream)
			}
			// The connection stays usable.
			c.expectTagged("b", "NOOP", "b OK ")
		})
	}
}

func TestTooManyFailedLogins(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		tries int
	}{
		{"default is 3", 0, 3},
		{"configured 1", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxFailedLogins = tt.max })
			c := e.greeted()
			for i := 1; i < tt.tries; i++ {
				// Mixed mechanisms count alike.
				if i%2 == 0 {
					c.expectTagged("a", "AUTHENTICATE PLAIN "+plainIR("", appUser, "nope"), "a NO [AUTHENTICATIONFAILED] ")
				} else {
					c.expectTagged("a", "LOGIN alice@example.org nope", "a NO [AUTHENTICATIONFAILED] ")
				}
			}
			lines := c.transact("z", "LOGIN alice@example.org nope")
			c.expect("* BYE Too many failed logins")
			c.expectClosed()
			if lines[0] != "z NO [AUTHENTICATIONFAILED] Invalid credentials" {
				t.Errorf("last reply %q", lines)
			}
		})
	}
}

func TestSessionRegistry(t *testing.T) {
	reg := &sessions.Registry{}
	e := newEnv(t, cleartext, func(s *Server) { s.Sessions = reg })
	c, peer := e.loggedIn()
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))

	live := reg.Sessions()
	if len(live) != 1 {
		t.Fatalf("registry has %d sessions, want 1", len(live))
	}
	s := live[0]
	if s.Protocol != "imap" || s.Login.Username != appUser || s.Login.AppPasswordID != appID ||
		s.Remote.String() != c.conn.LocalAddr().String() || len(s.ID) < 8 || s.Started.IsZero() {
		t.Errorf("registered %+v", s)
	}
	if !strings.Contains(e.logs.String(), "session="+s.ID) {
		t.Errorf("the log does not name session %s:\n%s", s.ID, e.logs.String())
	}
	// Another password's revocation leaves it alone.
	if n := reg.End(store.Event{Kind: store.EventAppPasswordRevoked, Username: appUser, AppPasswordID: "other"}); n != 0 {
		t.Fatalf("End(other) ended %d sessions", n)
	}
	c.send("b NOOP\r\n")
	peer.expect("b NOOP")
	peer.send("b OK NOOP completed\r\n")
	c.expect("b OK NOOP completed")
	c.send("c IDLE\r\n")
	peer.expect("c IDLE")
	peer.send("+ idling\r\n")
	c.expect("+ idling")
	// Revoking its app password ends it: the client hears why (it is in
	// IDLE, between two commands: passgate ends the IDLE and logs out
	// upstream, and the upstream's goodbye becomes passgate's), then both
	// sides are closed.
	if n := reg.End(store.Event{Kind: store.EventAppPasswordRevoked, Username: appUser, AppPasswordID: appID}); n != 1 {
		t.Fatalf("End ended %d sessions, want 1", n)
	}
	answerLogout(t, peer, true, "c OK Idle completed.\r\n")
	c.expect("c OK Idle completed.")
	c.expect(revokedBye)
	c.expectClosed()
}

func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, cleartext)
	secrets := []string{appSecret, mfaSecret, "Wrong-Secret-0001", "Wrong-Secret-0002", "Wrong-Secret-0003", "Wrong-Secret-0004"}
	c := e.greeted()
	c.expectTagged("a", "LOGIN alice@example.org Wrong-Secret-0001", "a NO ")
	c.expectTagged("b", "LOGIN mfa@example.org "+mfaSecret, "b NO ")
	c = e.greeted()
	c.expectTagged("c", "LOGIN broken@example.org Wrong-Secret-0002", "c NO ")
	c.expectTagged("d", "LOGIN down@example.org "+appSecret, "d NO ")
	c = e.greeted()
	c.expectTagged("e", "AUTHENTICATE PLAIN "+plainIR("", appUser, "Wrong-Secret-0003"), "e NO ")
	c.send("f AUTHENTICATE LOGIN\r\n")
	c.expect("+ VXNlcm5hbWU6")
	c.send(b64(appUser) + "\r\n")
	c.expect("+ UGFzc3dvcmQ6")
	c.send(b64("Wrong-Secret-0004") + "\r\n")
	c.expectPrefix("f NO ")
	c, _ = e.loggedIn()
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))

	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) || strings.Contains(logs, b64(s)) {
			t.Errorf("secret %q appears in the log:\n%s", s, logs)
		}
	}
	// One Info line per outcome, with what an operator needs.
	outcomes := regexp.MustCompile(`level=INFO msg="imap login" session=\S+ remote=127\.0\.0\.1:\d+ user=(\S+) mechanism=(\S+) result=(\S+)`).FindAllStringSubmatch(logs, -1)
	var got []string
	for _, m := range outcomes {
		got = append(got, m[1]+" "+m[2]+" "+m[3])
	}
	want := []string{
		"alice@example.org LOGIN bad-secret",
		"mfa@example.org LOGIN primary-refused-mfa",
		"broken@example.org LOGIN auth-error",
		"down@example.org LOGIN upstream-error",
		"alice@example.org PLAIN bad-secret",
		"alice@example.org LOGIN bad-secret",
		"alice@example.org LOGIN ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("login log lines:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), logs)
	}
}
