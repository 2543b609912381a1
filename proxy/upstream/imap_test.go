package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testtool"
)

const (
	masterSecret = `M4ster "s3cret" \ok`
	userPassword = "alice-own-passw0rd"
)

var alice = Login{
	Username:  "alice",
	Password:  userPassword,
	ClientIP:  netip.MustParseAddrPort("192.0.2.7:51234"),
	ClientID:  "Thunderbird 128",
	SessionID: "s-1",
}

func master(addr string) *IMAP {
	return &IMAP{Address: addr, Mode: ModeMaster, MasterUser: "proxy", MasterSecret: masterSecret}
}

// greetingCaps is a Dovecot-like greeting.
const greetingCaps = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot ready."

// postCaps is what the tagged OK of a login carries.
const postCaps = "IMAP4rev1 SASL-IR ID ENABLE IDLE SORT MOVE CONDSTORE"

// plainField decodes a SASL PLAIN response and checks its three fields.
func expectPlain(s *script, b64, authzid, authcid, password string) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		s.fail("PLAIN response %q is not base64: %v", b64, err)
		return
	}
	if want := authzid + "\x00" + authcid + "\x00" + password; string(raw) != want {
		s.fail("PLAIN fields %q, want %q", raw, want)
	}
}

// noSecrets fails if err's text holds a secret or a SASL blob built from one.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, secret := range []string{masterSecret, userPassword, "M4ster", "passw0rd",
		base64.StdEncoding.EncodeToString([]byte("alice\x00proxy\x00" + masterSecret)),
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + userPassword))} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a secret (%q)", msg, secret)
		}
	}
}

func doLogin(t *testing.T, u *IMAP, l Login) (*Conn, error) {
	t.Helper()
	c, err := u.Login(context.Background(), l)
	noSecrets(t, err)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// roundTrip checks that the handed-over connection still talks to the
// upstream: the script must answer "a1 NOOP" with "a1 OK NOOP done". It sets
// no deadline of its own (so a deadline left over from the login shows);
// a timer closes the connection instead if the upstream never answers.
func roundTrip(t *testing.T, c *Conn) {
	t.Helper()
	guard := time.AfterFunc(scriptDeadline, func() { c.Close() })
	defer guard.Stop()
	if _, err := c.Write([]byte("a1 NOOP\r\n")); err != nil {
		t.Fatalf("write after login: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "a1 OK NOOP done\r\n" {
		t.Fatalf("read after login: %q, %v", line, err)
	}
}

func answerNOOP(s *script) {
	s.expect(`a1 NOOP`)
	s.send("a1 OK NOOP done")
}

func TestLoginMasterSASLIR(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		s.send(greetingCaps)
		m := s.expect(`(\S+) ID \("x-originating-ip" "192\.0\.2\.7" "x-originating-port" "51234" "x-session-id" "s-1"\)`)
		// The ID answer carries a literal, which must be read as such.
		s.send(`* ID ("name" {7}`, `Dovecot "version" "2.3")`, m[1]+" OK ID completed.")
		m = s.expect(`(\S+) AUTHENTICATE PLAIN (\S+)`)
		expectPlain(s, m[2], "alice", "proxy", masterSecret)
		s.send(m[1] + " OK [CAPABILITY " + postCaps + "] Logged in")
		answerNOOP(s)
	})
	u := master(addr)
	u.SendID = true
	u.LoginTimeout = 300 * time.Millisecond
	c, err := doLogin(t, u, alice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if c.Capability != postCaps {
		t.Errorf("Capability = %q, want %q", c.Capability, postCaps)
	}
	if c.Text != "Logged in" || len(c.Buffered) != 0 {
		t.Errorf("Text = %q, Buffered = %q", c.Text, c.Buffered)
	}
	// The login deadline must be gone: wait past it, then use the conn.
	<-time.After(2 * u.LoginTimeout)
	roundTrip(t, c)
}

func TestLoginMasterContinuation(t *testing.T) {
	// No capabilities in the greeting: no SASL-IR, so the PLAIN response
	// waits for "+"; no capabilities in the OK, so CAPABILITY is asked.
	addr := serve(t, false, func(s *script) {
		s.send("* OK IMAP ready")
		m := s.expect(`(\S+) AUTHENTICATE PLAIN`)
		s.send("+ ")
		b64 := s.expect(`(\S+)`)[1]
		expectPlain(s, b64, "alice", "proxy", masterSecret)
		s.send(m[1] + " OK Logged in")
		m = s.expect(`(\S+) CAPABILITY`)
		s.send("* OK [ALERT] Mailbox almost full",
			"* CAPABILITY IMAP4rev1 IDLE X-FOO",
			m[1]+" OK Capability completed.",
			"* 1 EXISTS") // unsolicited, after our last tagged response
		answerNOOP(s)
	})
	c, err := doLogin(t, master(addr), alice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if c.Capability != "IMAP4rev1 IDLE X-FOO" {
		t.Errorf("Capability = %q", c.Capability)
	}
	if want := "* OK [ALERT] Mailbox almost full\r\n* 1 EXISTS\r\n"; string(c.Buffered) != want {
		t.Errorf("Buffered = %q, want %q", c.Buffered, want)
	}
	roundTrip(t, c)
}

func TestLoginMasterLOGIN(t *testing.T) {
	tests := []struct {
		name, sep, secret string
		script            func(s *script, secret string)
	}{
		{"quoted with escapes", "", masterSecret, func(s *script, _ string) {
			m := s.expect(`(\S+) LOGIN "alice\*proxy" "M4ster \\"s3cret\\" \\\\ok"`)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
		}},
		{"custom separator", "%", "plain", func(s *script, _ string) {
			m := s.expect(`(\S+) LOGIN "alice%proxy" "plain"`)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
		}},
		{"8-bit secret as literal", "", "sécret\r\nx", func(s *script, secret string) {
			m := s.expect(`(\S+) LOGIN "alice\*proxy" \{10\}`)
			s.send("+ OK")
			if got := s.line() + "\r\n" + s.line(); got != secret {
				s.fail("literal = %q, want %q", got, secret)
			}
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, false, func(s *script) {
				s.send(greetingCaps)
				tt.script(s, tt.secret)
				answerNOOP(s)
			})
			u := master(addr)
			u.Mode, u.Separator, u.MasterSecret = ModeLoginMaster, tt.sep, tt.secret
			c, err := doLogin(t, u, alice)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if c.Capability != "IMAP4rev1 IDLE" {
				t.Errorf("Capability = %q", c.Capability)
			}
			roundTrip(t, c)
		})
	}
}

// TestLoginMasterRefusesSeparatorInUsername: in login-master mode a user
// name holding the separator would name part of itself as the master user
// ("eve%bob" + "%" + "proxy"; Dovecot splits at the first separator). The
// login is refused before anything is dialled (defence in depth: authn
// already treats such names as unknown users).
func TestLoginMasterRefusesSeparatorInUsername(t *testing.T) {
	for _, sep := range []string{"%", ""} { // "" is "*"
		t.Run("separator "+sep, func(t *testing.T) {
			sent := make(chan string, 1)
			addr := serve(t, false, func(s *script) {
				s.send(greetingCaps)
				sent <- s.line()
				s.expectEOF()
			})
			u := master(addr)
			u.Mode, u.Separator, u.LoginTimeout = ModeLoginMaster, sep, 300*time.Millisecond
			name := "eve%bob"
			if sep == "" {
				name = "eve*bob"
			}
			_, err := doLogin(t, u, Login{Username: name, ClientIP: alice.ClientIP})
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(refused.Text, "separator") {
				t.Errorf("Login = %v, want a *RefusedError naming the separator", err)
			}
			select {
			case l := <-sent:
				t.Errorf("the upstream received %q", l)
			default:
			}
		})
	}
}

func TestLoginPassthrough(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
		script   func(s *script)
	}{
		{"AUTH=PLAIN without authzid", greetingCaps, func(s *script) {
			m := s.expect(`(\S+) AUTHENTICATE PLAIN (\S+)`)
			expectPlain(s, m[2], "", "alice", userPassword)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1] Logged in")
		}},
		{"no AUTH=PLAIN: LOGIN", "* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] ready", func(s *script) {
			m := s.expect(`(\S+) LOGIN "alice" "` + userPassword + `"`)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1] Logged in")
		}},
		{"capabilities asked first", "* OK ready", func(s *script) {
			m := s.expect(`(\S+) CAPABILITY`)
			s.send("* CAPABILITY IMAP4rev1 AUTH=PLAIN", m[1]+" OK done")
			m = s.expect(`(\S+) AUTHENTICATE PLAIN`)
			s.send("+")
			expectPlain(s, s.line(), "", "alice", userPassword)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1] Logged in")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, false, func(s *script) {
				s.send(tt.greeting)
				tt.script(s)
				answerNOOP(s)
			})
			c, err := doLogin(t, &IMAP{Address: addr, Mode: ModePassthrough}, alice)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			roundTrip(t, c)
		})
	}
}

// TestLoginNotInClear: an upstream that announces LOGINDISABLED without
// AUTH=PLAIN (RFC 3501 §6.2.3: it wants TLS first) never sees the secret,
// in any mode: the login fails as unavailable before a LOGIN is sent.
func TestLoginNotInClear(t *testing.T) {
	for _, mode := range []Mode{ModePassthrough, ModeLoginMaster, ModeMaster} {
		t.Run(string(mode), func(t *testing.T) {
			addr := serve(t, false, func(s *script) {
				s.send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready")
				s.expectEOF()
			})
			u := master(addr)
			u.Mode = mode
			if _, err := doLogin(t, u, alice); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Login = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestLoginTLS(t *testing.T) {
	clientConf := testcert.ClientConfig("")
	t.Run("starttls", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send("* OK [CAPABILITY IMAP4rev1 STARTTLS SASL-IR AUTH=PLAIN LOGINDISABLED] ready")
			m := s.expect(`(\S+) STARTTLS`)
			s.send(m[1] + " OK Begin TLS negotiation now.")
			s.startTLS()
			// Pre-TLS capabilities are forgotten: no SASL-IR assumed.
			m = s.expect(`(\S+) AUTHENTICATE PLAIN`)
			s.send("+ ")
			expectPlain(s, s.line(), "alice", "proxy", masterSecret)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
			answerNOOP(s)
		})
		u := master(addr)
		u.TLS, u.TLSConfig = TLSStartTLS, clientConf
		c, err := doLogin(t, u, alice)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		roundTrip(t, c)
	})
	t.Run("implicit", func(t *testing.T) {
		addr := serve(t, true, func(s *script) {
			s.send(greetingCaps)
			m := s.expect(`(\S+) AUTHENTICATE PLAIN (\S+)`)
			expectPlain(s, m[2], "alice", "proxy", masterSecret)
			s.send(m[1] + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
			answerNOOP(s)
		})
		u := master(addr)
		u.TLS, u.TLSConfig = TLSImplicit, clientConf
		c, err := doLogin(t, u, alice)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		roundTrip(t, c)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		addr := serve(t, true, func(s *script) {
			if err := s.conn.(*tls.Conn).Handshake(); err == nil {
				s.fail("handshake with an untrusting client succeeded")
			}
		})
		u := master(addr)
		u.TLS = TLSImplicit // system roots: the self-signed cert fails
		if _, err := doLogin(t, u, alice); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Login = %v, want ErrUnavailable", err)
		}
	})
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name           string
		answer         string
		code, wantText string
	}{
		{"unknown target user", "NO [AUTHORIZATIONFAILED] Authorization failed", "AUTHORIZATIONFAILED", "Authorization failed"},
		{"wrong master secret", "NO [AUTHENTICATIONFAILED] Authentication failed.", "AUTHENTICATIONFAILED", "Authentication failed."},
		{"bad without code", "BAD Error in IMAP command", "", "Error in IMAP command"},
		{"echoes part of the secret", `NO Unknown user alice secret "s3cret"`, "", "(withheld: echoes credentials)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, false, func(s *script) {
				s.send(greetingCaps)
				m := s.expect(`(\S+) AUTHENTICATE PLAIN \S+`)
				s.send(m[1] + " " + tt.answer)
				s.expectEOF() // Login closes the connection
			})
			_, err := doLogin(t, master(addr), alice)
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Login = %v, want *RefusedError", err)
			}
			if refused.Code != tt.code || refused.Text != tt.wantText {
				t.Errorf("RefusedError = %+v, want code %q text %q", refused, tt.code, tt.wantText)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("refusal also matches ErrUnavailable")
			}
		})
	}
}

func TestLoginUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		script func(s *script)
		want   string // in the error text
	}{
		{"greeting BYE", func(s *script) { s.send("* BYE Too many connections") }, "Too many connections"},
		{"greeting PREAUTH", func(s *script) { s.send("* PREAUTH [CAPABILITY IMAP4rev1] hi"); s.expectEOF() }, "PREAUTH"},
		{"garbage greeting", func(s *script) { s.send("HTTP/1.1 400 Bad Request") }, "HTTP/1.1"},
		{"greeting too long", func(s *script) { s.sendRaw("* OK " + strings.Repeat("x", maxResponse) + "\r\n") }, "too long"},
		{"close after greeting", func(s *script) {
			s.send(greetingCaps)
			s.expect(`\S+ AUTHENTICATE PLAIN \S+`)
		}, "unexpected EOF"},
		{"BYE during login", func(s *script) {
			s.send(greetingCaps)
			s.expect(`\S+ AUTHENTICATE PLAIN \S+`)
			s.send("* BYE Server shutting down.")
		}, "Server shutting down."},
		{"NO [UNAVAILABLE]", func(s *script) {
			s.send(greetingCaps)
			m := s.expect(`(\S+) AUTHENTICATE PLAIN \S+`)
			s.send(m[1] + " NO [UNAVAILABLE] Temporary authentication failure.")
			s.expectEOF()
		}, "Temporary authentication failure."},
		{"server echoes our command", func(s *script) {
			s.send(greetingCaps)
			l := s.line()
			s.send("* " + l) // an untagged line is skipped...
			s.send(l)        // ...but our own command as a response is garbage
			s.expectEOF()
		}, "withheld"},
		{"STARTTLS refused", func(s *script) {
			s.send("* OK ready")
			m := s.expect(`(\S+) STARTTLS`)
			s.send(m[1] + " BAD TLS support isn't enabled.")
		}, "refused"},
		{"plaintext injected after STARTTLS", func(s *script) {
			s.send("* OK ready")
			m := s.expect(`(\S+) STARTTLS`)
			s.sendRaw(m[1] + " OK Begin TLS negotiation now.\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
			s.expectEOF()
		}, "injection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, false, tt.script)
			u := master(addr)
			if strings.Contains(tt.name, "STARTTLS") {
				u.TLSConfig = testcert.ClientConfig("")
				u.TLS = TLSStartTLS
			}
			c, err := doLogin(t, u, alice)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Login = %v, %v; want ErrUnavailable", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestLoginConnectionRefused(t *testing.T) {
	if _, err := doLogin(t, master(testtool.ClosedAddr(t)), alice); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Login = %v, want ErrUnavailable", err)
	}
}

// silentServer accepts one connection and says nothing until the client
// closes it; accepted is closed when the connection is in.
func silentServer(t *testing.T) (addr string, accepted chan struct{}) {
	accepted = make(chan struct{})
	addr = serve(t, false, func(s *script) {
		close(accepted)
		s.expectEOF()
	})
	return addr, accepted
}

func TestLoginTimeout(t *testing.T) {
	addr, _ := silentServer(t)
	u := master(addr)
	u.LoginTimeout = 200 * time.Millisecond
	_, err := doLogin(t, u, alice)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Login = %v, want ErrUnavailable after the login deadline", err)
	}
}

func TestLoginContextCanceled(t *testing.T) {
	addr, accepted := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-accepted; cancel() }()
	_, err := master(addr).Login(ctx, alice)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Login = %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestCheck(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send(greetingCaps)
			m := s.expect(`(\S+) LOGOUT`)
			s.send("* BYE Logging out", m[1]+" OK Logout completed.")
			s.expectEOF()
		})
		if err := master(addr).Check(context.Background()); err != nil {
			t.Fatalf("Check = %v", err)
		}
	})
	t.Run("BYE greeting", func(t *testing.T) {
		addr := serve(t, false, func(s *script) { s.send("* BYE Server overloaded") })
		if err := master(addr).Check(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Check = %v, want ErrUnavailable", err)
		}
	})
}

func TestCapabilities(t *testing.T) {
	t.Run("from the greeting", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send(greetingCaps)
			m := s.expect(`(\S+) LOGOUT`)
			s.send("* BYE Logging out", m[1]+" OK Logout completed.")
			s.expectEOF()
		})
		caps, err := master(addr).Capabilities(context.Background())
		if want := "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN"; err != nil || strings.Join(caps, " ") != want {
			t.Errorf("Capabilities = %q, %v; want %q", caps, err, want)
		}
	})
	t.Run("asked for, after STARTTLS", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED X-PLAINTEXT] ready")
			m := s.expect(`(\S+) STARTTLS`)
			s.send(m[1] + " OK Begin TLS negotiation now.")
			s.startTLS()
			m = s.expect(`(\S+) CAPABILITY`)
			s.send("* CAPABILITY IMAP4rev1 IDLE ENABLE AUTH=PLAIN", m[1]+" OK done")
			m = s.expect(`(\S+) LOGOUT`)
			s.send("* BYE Logging out", m[1]+" OK Logout completed.")
			s.expectEOF()
		})
		u := master(addr)
		u.TLS, u.TLSConfig = TLSStartTLS, testcert.ClientConfig("")
		caps, err := u.Capabilities(context.Background())
		if want := "IMAP4rev1 IDLE ENABLE AUTH=PLAIN"; err != nil || strings.Join(caps, " ") != want {
			t.Errorf("Capabilities = %q, %v; want %q", caps, err, want)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		if _, err := master(testtool.ClosedAddr(t)).Capabilities(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Capabilities = %v, want ErrUnavailable", err)
		}
	})
}
