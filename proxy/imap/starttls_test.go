package imap

import (
	"slices"
	"strings"
	"testing"
)

func TestLoginRequiresTLS(t *testing.T) {
	e := newEnv(t, withTLS)
	c := e.greeted()
	const refused = " NO [PRIVACYREQUIRED] TLS required: use STARTTLS"
	if got := c.transact("a", "LOGIN alice@example.org "+appSecret); got[0] != "a"+refused {
		t.Errorf("LOGIN before STARTTLS: %q", got)
	}
	if got := c.transact("b", "AUTHENTICATE PLAIN "+plainIR("", appUser, appSecret)); got[0] != "b"+refused {
		t.Errorf("AUTHENTICATE before STARTTLS: %q", got)
	}
	// A synchronising literal gets no continuation: the password is never
	// sent in clear.
	c.send("c LOGIN {17}\r\n")
	c.expect("c" + refused)
	// A non-synchronising one is skipped, and the stream stays in sync.
	c.send("d LOGIN {17+}\r\nalice@example.org " + appSecret + "\r\n")
	c.expect("d" + refused)
	c.expectTagged("e", "NOOP", "e OK ")
	if n := len(e.auth.all()); n != 0 {
		t.Fatalf("Verify called %d times before TLS", n)
	}

	c.startTLS()
	caps := strings.Fields(strings.TrimPrefix(c.expectTagged("f", "CAPABILITY", "f OK ")[0], "* CAPABILITY "))
	if slices.Contains(caps, "STARTTLS") || slices.Contains(caps, "LOGINDISABLED") || !slices.Contains(caps, "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %q", caps)
	}
	c.expectTagged("g", "STARTTLS", "g BAD ")
	lines := c.transact("a", "LOGIN alice@example.org "+appSecret)
	if lines[0] != okAlice {
		t.Fatalf("LOGIN after STARTTLS: %q", lines)
	}
	peer := e.peer(t)
	c.send("h NOOP\r\n")
	peer.expect("h NOOP")
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))
}

// Commands pipelined behind STARTTLS must not run inside the TLS session
// (RFC 3501 §6.2.1; CVE-2021-33515 class).
func TestStartTLSRefusesPipelinedCommands(t *testing.T) {
	e := newEnv(t, withTLS)
	c := e.greeted()
	c.send("s STARTTLS\r\na LOGIN alice@example.org " + appSecret + "\r\n")
	c.expect("s BAD Data pipelined after STARTTLS")
	c.expectClosed()
	if n := len(e.auth.all()); n != 0 {
		t.Errorf("Verify called %d times", n)
	}
}

func TestStartTLSNotAvailable(t *testing.T) {
	e := newEnv(t, cleartext)
	c := e.greeted()
	c.expectTagged("s", "STARTTLS", "s BAD ")
	c.expectTagged("n", "NOOP", "n OK ")
}

func TestImplicitTLS(t *testing.T) {
	e := newEnv(t, withTLS)
	c := e.greetedTLS()
	c.expectTagged("s", "STARTTLS", "s BAD ")
	if lines := c.transact("a", "LOGIN alice@example.org "+appSecret); lines[0] != okAlice {
		t.Fatalf("LOGIN over implicit TLS: %q", lines)
	}
	peer := e.peer(t)
	c.expect(strings.TrimSuffix(upstreamBuffered, "\r\n"))
	c.send("b LOGOUT\r\n")
	peer.expect("b LOGOUT")
	peer.send("* BYE bye\r\nb OK LOGOUT completed\r\n")
	c.expect("* BYE bye")
	c.expect("b OK LOGOUT completed")
}
