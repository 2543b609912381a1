package imap

import (
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy"
)

// TestUpstreamRefusalIsAnError (issue 14 item 9): the upstream refusing
// passgate's own login after an OK (a wrong master secret, a user unknown
// upstream) is an operator's problem, logged at ERROR with a hint; it was
// an INFO line among the users' failed logins.
func TestUpstreamRefusalIsAnError(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.greeted()
	c.expectTagged("a", "LOGIN "+refusedUser+" "+appSecret, "a NO [AUTHORIZATIONFAILED]")
	logs := e.logs.String()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "upstream-refused") {
			line = l
		}
	}
	if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "hint=") {
		t.Errorf("upstream refusal logged as %q, want an ERROR with a hint", line)
	}
}

// TestLoginWithMasterSeparator (issue 14 item 9): "LOGIN alice*proxy x"
// (an operator trying the master login by hand) was answered "BAD Missing
// argument", since "*" may not appear in an atom. It is an ordinary
// refused login now, decided (and audited) by the Authenticator.
func TestLoginWithMasterSeparator(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.greeted()
	c.expectTagged("a", "LOGIN alice*proxy x", "a NO [AUTHENTICATIONFAILED]")
	c.expectTagged("b", "LOGIN alice%proxy x%y", "b NO [AUTHENTICATIONFAILED]")
	got := e.auth.all()
	if len(got) != 2 || got[0].Username != "alice*proxy" || got[1].Secret != "x%y" {
		t.Errorf("attempts %+v, want alice*proxy and alice%%proxy with their secrets", got)
	}
}

// TestRevokedSessionGetsBye (issue 14 item 9): a session ended by a
// revocation was closed without a word; the client gets "* BYE" first when
// it is between two commands.
func TestRevokedSessionGetsBye(t *testing.T) {
	db, reg, seen := sessionStore(t)
	e := newEnv(t, cleartext, func(s *Server) { s.Sessions = reg })
	c, peer := e.loggedIn()
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))
	peer.send("* 4 EXISTS\r\n")
	c.expect("* 4 EXISTS")
	if err := db.RevokeAppPassword(t.Context(), appUser, appID); err != nil {
		t.Fatal(err)
	}
	<-seen
	// The BYE is the upstream's answer to passgate's LOGOUT, rewritten.
	answerLogout(t, peer, false, "")
	c.expectPrefix("* BYE ")
	c.expectClosed()
}

// TestRefusedConnectionNamesTheLimit (issue 14 item 9): the log line of a
// connection refused for the connection limits says which limit.
func TestRefusedConnectionNamesTheLimit(t *testing.T) {
	lim := &proxy.ConnLimiter{Max: 10, PerIP: 1}
	e := newEnv(t, cleartext, func(s *Server) { s.Limits.Conns = lim })
	e.greeted()
	c := e.connected()
	c.expect("* BYE Too many connections")
	if !strings.Contains(e.logs.String(), "limit=max_connections_per_ip") {
		t.Errorf("logs do not name the limit:\n%s", e.logs.String())
	}
}
