package upstream

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testtool"
)

// ehloAuth is an EHLO reply offering the AUTH mechanisms mechs.
func ehloAuth(mechs string) string {
	return "250-up.test\r\n250-8BITMIME\r\n250-AUTH " + mechs + "\r\n250 SIZE 10485760"
}

// greetEHLO plays the upstream's greeting and its EHLO reply.
func greetEHLO(s *script, ehlo string) {
	s.send("220 up.test ESMTP")
	s.expect(`EHLO passgate`)
	s.send(ehlo)
}

// expectSASL reads one SMTP AUTH exchange of mech (PLAIN with an initial
// response; LOGIN answering two prompts) and returns the fields it sent.
func expectSASL(s *script, mech string) (authzid, username, secret string) {
	decode := func(b64 string) string {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			s.fail("%q is not base64: %v", b64, err)
		}
		return string(b)
	}
	if mech == "PLAIN" {
		fields := strings.Split(decode(s.expect(`AUTH PLAIN (\S+)`)[1]), "\x00")
		if len(fields) != 3 {
			s.fail("PLAIN message has %d fields", len(fields))
			return "", "", ""
		}
		s.send("235 2.7.0 Authentication successful")
		return fields[0], fields[1], fields[2]
	}
	s.expect(`AUTH LOGIN`)
	s.send("334 VXNlcm5hbWU6")
	username = decode(s.line())
	s.send("334 UGFzc3dvcmQ6")
	secret = decode(s.line())
	s.send("235 2.7.0 Authentication successful")
	return "", username, secret
}

func smtpMaster(addr string) *SMTP {
	return Config{Address: addr, Mode: ModeMaster, MasterUser: "proxy", MasterSecret: masterSecret}.SMTP()
}

// TestSMTPLoginModes: each mode presents its credential with the first
// mechanism of its own order that the upstream offers, and the session it
// hands back is no longer bound by the login deadline.
func TestSMTPLoginModes(t *testing.T) {
	joined := "alice*proxy"
	for _, tc := range []struct {
		name, mode, offered, mech     string
		authzid, username, wantSecret string
	}{
		{"master", "master", "PLAIN LOGIN", "PLAIN", "alice", "proxy", masterSecret},
		{"master without PLAIN", "master", "LOGIN", "LOGIN", "", joined, masterSecret},
		{"login-master", "login-master", "PLAIN LOGIN", "LOGIN", "", joined, masterSecret},
		{"login-master without LOGIN", "login-master", "PLAIN", "PLAIN", "", joined, masterSecret},
		{"passthrough", "passthrough", "PLAIN LOGIN", "PLAIN", "", "alice", userPassword},
		{"passthrough without PLAIN", "passthrough", "LOGIN", "LOGIN", "", "alice", userPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := serve(t, false, func(s *script) {
				greetEHLO(s, ehloAuth(tc.offered))
				authzid, username, secret := expectSASL(s, tc.mech)
				if authzid != tc.authzid || username != tc.username || secret != tc.wantSecret {
					s.fail("AUTH %s sent %q %q %q", tc.mech, authzid, username, secret)
				}
				s.expect(`NOOP`)
				s.send("250 2.0.0 Ok")
				s.expect(`QUIT`)
				s.send("221 2.0.0 Bye")
			})
			u := smtpMaster(addr)
			u.Mode, u.LoginTimeout = Mode(tc.mode), time.Second
			c, err := u.Login(context.Background(), alice)
			noSecrets(t, err)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			<-time.After(2 * u.LoginTimeout)
			if err := c.Client.Noop(); err != nil {
				t.Errorf("NOOP after the login deadline: %v", err)
			}
			c.Quit(scriptDeadline)
		})
	}
}

func TestSMTPXCLIENT(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		greetEHLO(s, "250-postfix.test\r\n250-XCLIENT NAME ADDR PROTO HELO LOGIN\r\n250 8BITMIME")
		s.expect(`XCLIENT LOGIN=alice ADDR=192\.0\.2\.7 NAME=\[UNAVAILABLE\]`)
		s.send("220 postfix.test ESMTP")
		s.expect(`EHLO passgate`)
		s.send("250-postfix.test\r\n250 8BITMIME")
		s.expect(`QUIT`)
		s.send("221 2.0.0 Bye")
	})
	u := Config{Address: addr, Mode: ModeXCLIENT}.SMTP()
	if u.NeedsClientSecret() {
		t.Error("xclient asks for the client's secret")
	}
	c, err := u.Login(context.Background(), alice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !c.Has("8BITMIME") {
		t.Error("the EHLO after XCLIENT is not the session's")
	}
	c.Quit(scriptDeadline)
}

// TestSMTPLoginTimeout: go-smtp sets a deadline of its own (CommandTimeout)
// per command; the login deadline still bounds the login.
func TestSMTPLoginTimeout(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		s.send("220 up.test ESMTP")
		s.expect(`EHLO passgate`)
		s.expectEOF() // no answer, until passgate gives up
	})
	u := smtpMaster(addr)
	u.LoginTimeout = 200 * time.Millisecond // CommandTimeout stays 5m
	if _, err := u.Login(context.Background(), alice); err == nil {
		t.Fatal("Login succeeded without an EHLO reply")
	}
}

func TestSMTPLoginContextCanceled(t *testing.T) {
	addr, accepted := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-accepted; cancel() }()
	_, err := smtpMaster(addr).Login(ctx, alice)
	if err == nil {
		t.Fatal("Login succeeded after ctx ended")
	}
}

// TestSMTPRefusesSeparatorInUsername: where the login joins user and master
// user with the separator (login-master, and master over AUTH LOGIN), a
// user name holding it would name part of itself as the master user. The
// login is refused before anything is dialled (defence in depth: authn
// already treats such names as unknown users).
func TestSMTPRefusesSeparatorInUsername(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		sep, user string
	}{
		{ModeLoginMaster, "%", "eve%bob"},
		{ModeLoginMaster, "", "eve*bob"},
		{ModeMaster, "%", "eve%bob"},
	} {
		t.Run(string(tc.mode)+" "+tc.user, func(t *testing.T) {
			dialled := make(chan struct{}, 1)
			addr := serve(t, false, func(*script) { dialled <- struct{}{} })
			u := smtpMaster(addr)
			u.Mode, u.Separator = tc.mode, tc.sep
			c, err := u.Login(context.Background(), Login{Username: tc.user})
			if c != nil {
				c.Abort()
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), "separator") {
				t.Errorf("Login = %v, want a *RefusedError naming the separator", err)
			}
			select {
			case <-dialled:
				t.Error("the upstream was dialled")
			default:
			}
		})
	}
}

func TestSMTPProbe(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		greetEHLO(s, "250-up.test\r\n250-SIZE 35882577\r\n250-DSN\r\n250-SMTPUTF8\r\n250 AUTH PLAIN")
		s.expect(`QUIT`)
		s.send("221 2.0.0 Bye")
	})
	f, err := smtpMaster(addr).Probe(context.Background())
	if want := (SMTPFeatures{MaxSize: 35882577, DSN: true, SMTPUTF8: true}); err != nil || f != want {
		t.Errorf("Probe = %+v, %v; want %+v", f, err, want)
	}
}

func TestSMTPCheck(t *testing.T) {
	down := testtool.ClosedAddr(t)
	quit := func(s *script) {
		s.expect(`QUIT`)
		s.send("221 2.0.0 Bye")
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		script  func(s *script) // nil: nothing listens
		wantErr string
	}{
		{"master ok", Config{Mode: ModeMaster, MasterUser: "m", MasterSecret: "s"},
			func(s *script) { greetEHLO(s, ehloAuth("PLAIN LOGIN")); quit(s) }, ""},
		{"xclient ok", Config{Mode: ModeXCLIENT},
			func(s *script) { greetEHLO(s, "250-postfix.test\r\n250 XCLIENT NAME ADDR LOGIN"); quit(s) }, ""},
		{"xclient not offered", Config{Mode: ModeXCLIENT},
			func(s *script) { greetEHLO(s, ehloAuth("PLAIN")); quit(s) }, "XCLIENT"},
		{"xclient without ADDR", Config{Mode: ModeXCLIENT},
			func(s *script) { greetEHLO(s, "250-postfix.test\r\n250 XCLIENT NAME LOGIN"); quit(s) }, "ADDR"},
		{"no AUTH", Config{Mode: ModePassthrough},
			func(s *script) { greetEHLO(s, "250-up.test\r\n250 8BITMIME"); quit(s) }, "neither AUTH PLAIN nor AUTH LOGIN"},
		{"down", Config{Address: down, Mode: ModePassthrough}, nil, "dial"},
		{"bad mode", Config{Address: down, Mode: "magic"}, nil, "mode"},
		{"master without secret", Config{Address: down, Mode: ModeMaster}, nil, "master user"},
		{"bad tls", Config{Address: down, Mode: ModePassthrough, TLS: "ssl"}, nil, "tls"},
		{"starttls not offered", Config{Mode: ModePassthrough, TLS: TLSStartTLS}, func(s *script) {
			s.send("220 up.test ESMTP")
			s.expect(`EHLO passgate`)
			s.send(ehloAuth("PLAIN"))
			s.expectEOF()
		}, "STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.cfg.SMTP()
			if tc.script != nil {
				u.Address = serve(t, false, tc.script)
			}
			err := u.Check(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check: %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestSMTPTLS(t *testing.T) {
	clientConf := testcert.ClientConfig("")
	t.Run("starttls", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send("220 up.test ESMTP")
			s.expect(`EHLO passgate`)
			s.send("250-up.test\r\n250 STARTTLS")
			s.expect(`STARTTLS`)
			s.send("220 2.0.0 Ready to start TLS")
			s.startTLS()
			s.expect(`EHLO passgate`)
			s.send(ehloAuth("PLAIN"))
			expectSASL(s, "PLAIN")
			s.expect(`QUIT`)
			s.send("221 2.0.0 Bye")
		})
		u := smtpMaster(addr)
		u.TLS, u.TLSConfig = TLSStartTLS, clientConf
		c, err := u.Login(context.Background(), alice)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if tc, ok := c.conn.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
			t.Errorf("the session speaks on a %T, not TLS", c.conn)
		}
		c.Quit(scriptDeadline)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		addr := serve(t, true, func(s *script) { s.expectEOF() })
		u := smtpMaster(addr)
		u.TLS = TLSImplicit // system roots: the self-signed cert fails
		if _, err := u.Login(context.Background(), alice); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Login = %v, want ErrUnavailable", err)
		}
	})
	// Issue 14: the error named the EHLO after STARTTLS, not the handshake
	// that failed, and did not point at ca_file.
	t.Run("starttls untrusted certificate", func(t *testing.T) {
		addr := serve(t, false, func(s *script) {
			s.send("220 up.test ESMTP")
			s.expect(`EHLO passgate`)
			s.send("250-up.test\r\n250 STARTTLS")
			s.expect(`STARTTLS`)
			s.send("220 2.0.0 Ready to start TLS")
			tc := tls.Server(s.conn, testcert.ServerConfig())
			tc.SetDeadline(time.Now().Add(scriptDeadline))
			if err := tc.Handshake(); err == nil {
				s.fail("the handshake succeeded with an untrusted certificate")
			}
		})
		u := smtpMaster(addr)
		u.TLS = TLSStartTLS // system roots: the self-signed cert fails
		_, err := u.Login(context.Background(), alice)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "tls handshake") ||
			!strings.Contains(err.Error(), "ca_file") || strings.Contains(err.Error(), "ehlo") {
			t.Fatalf("Login = %v, want ErrUnavailable naming the TLS handshake and ca_file", err)
		}
	})
}

func TestXCLIENTEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.org", "alice@example.org"},
		{"a+b=c d", "a+2Bb+3Dc+20d"},
		{"\xc3\xa9", "+C3+A9"},
	} {
		if got := xtext(tc.in); got != tc.want {
			t.Errorf("xtext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "IPV6:2001:db8::1"},
	} {
		if got := xclientAddr(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("xclientAddr(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSMTPRefusedLogin (issue 14): a 535 to passgate's AUTH (a wrong master
// secret) is a *RefusedError with a hint, like IMAP's NO, so that the
// front end logs it as the operator's problem it is.
func TestSMTPRefusedLogin(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		greetEHLO(s, ehloAuth("PLAIN"))
		s.expect(`AUTH PLAIN \S+`)
		s.send("535 5.7.8 Authentication failed")
		s.expect(`\*`) // go-smtp cancels the exchange
		s.expectEOF()
	})
	_, err := smtpMaster(addr).Login(context.Background(), alice)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Code != "535" || !strings.Contains(refused.Hint(), "master_secret") {
		t.Fatalf("Login = %v, want a *RefusedError 535 whose hint names master_secret", err)
	}
}

// TestSMTPStartTLSReplyLimit: the greeting and replies read before
// STARTTLS (plaintext, which anyone on the path can write) are bounded as
// go-smtp's own client bounds them: an endless greeting line is refused
// instead of being kept in memory until the login deadline.
func TestSMTPStartTLSReplyLimit(t *testing.T) {
	addr := serve(t, false, func(s *script) {
		s.conn.SetWriteDeadline(time.Now().Add(scriptDeadline))
		s.conn.Write([]byte("220 " + strings.Repeat("a", 4<<20) + "\r\n")) // the client may hang up meanwhile
		s.expectEOF()
	})
	u := smtpMaster(addr)
	u.TLS, u.TLSConfig = TLSStartTLS, testcert.ClientConfig("")
	_, err := u.Login(context.Background(), alice)
	if err == nil || !strings.Contains(err.Error(), "greeting") || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Login = %v, want an error about a greeting longer than the limit", err)
	}
}

// TestSMTPReplyLimit: an EHLO reply of endless continuation lines (each
// short enough for go-smtp's own line limit) is refused instead of being
// kept in memory until the login deadline, from go-smtp's client (master
// login) and from the XCLIENT preamble alike.
func TestSMTPReplyLimit(t *testing.T) {
	for _, tc := range []struct {
		name, last string
		upstream   func(addr string) *SMTP
	}{
		{"master", "250 AUTH PLAIN", smtpMaster},
		{"xclient", "250 XCLIENT NAME ADDR LOGIN", func(addr string) *SMTP {
			return Config{Address: addr, Mode: ModeXCLIENT}.SMTP()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, false, func(s *script) {
				s.send("220 up.test ESMTP")
				s.expect(`EHLO passgate`)
				s.conn.SetWriteDeadline(time.Now().Add(scriptDeadline))
				s.conn.Write([]byte(strings.Repeat("250-"+strings.Repeat("x", 60)+"\r\n", 64<<10) + tc.last + "\r\n"))
				s.expectEOF()
			})
			_, err := tc.upstream(addr).Login(context.Background(), alice)
			if err == nil || !strings.Contains(err.Error(), "ehlo") || !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("Login = %v, want an error about an EHLO reply longer than the limit", err)
			}
		})
	}
}
