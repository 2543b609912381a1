package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/store"
)

// testMsg exercises dot-stuffing (a lone dot, leading dots) and 8-bit bytes.
const testMsg = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\n" +
	"line one\r\n.\r\n.leading dot\r\n..two dots\r\n\xc3\xa9t\xc3\xa9 8bit\r\nlast line\r\n"

func TestRelayExactBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mech sasl.Client
	}{
		{"PLAIN", sasl.NewPlainClient("", appUser, appSecret)},
		{"PLAIN authzid=user", sasl.NewPlainClient(appUser, appUser, appSecret)},
		{"LOGIN initial response", sasl.NewLoginClient(appUser, appSecret)},
		{"LOGIN prompts", newLoginClient(appUser, appSecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			c := dial(t, e.addr)
			if err := c.Auth(tc.mech); err != nil {
				t.Fatalf("AUTH: %v", err)
			}
			if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
				t.Fatal(err)
			}
			msgs := e.sink.messages()
			if len(msgs) != 1 {
				t.Fatalf("sink has %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if string(m.data) != testMsg {
				t.Errorf("sink got %q\nwant %q", m.data, testMsg)
			}
			if m.from != appUser || !slices.Equal(m.rcpts, []string{"bob@example.net"}) {
				t.Errorf("envelope %q -> %q", m.from, m.rcpts)
			}
			wantAuth := sinkAuth{"PLAIN", appUser, masterUser, masterSecret}
			if got := e.sink.authsSeen(); !slices.Equal(got, []sinkAuth{wantAuth}) {
				t.Errorf("upstream AUTH %+v, want %+v", got, wantAuth)
			}
			a := e.auth.lastAttempt(t)
			mech, _, _ := tc.mech.Start()
			if a.Protocol != store.ScopeSMTP || a.Mechanism != mech || a.RemoteIP.String() != "127.0.0.1" {
				t.Errorf("attempt %+v", a)
			}
			if err := c.Quit(); err != nil {
				t.Errorf("QUIT: %v", err)
			}
			logs := e.logs.String()
			if strings.Contains(logs, appSecret) || strings.Contains(logs, masterSecret) ||
				strings.Contains(logs, "leading dot") {
				t.Errorf("logs hold a secret or message content:\n%s", logs)
			}
			for _, want := range []string{"result=ok", "upstream_code=250", "size=" + strconv.Itoa(len(testMsg))} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
		})
	}
}

func TestUpstreamLoginModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  string
		mechs []string
		want  sinkAuth
	}{
		{"master PLAIN authzid", ModeMaster, nil, sinkAuth{"PLAIN", appUser, masterUser, masterSecret}},
		{"master without PLAIN uses LOGIN", ModeMaster, []string{"LOGIN"}, sinkAuth{"LOGIN", "", appUser + "*" + masterUser, masterSecret}},
		{"login-master", ModeLoginMaster, nil, sinkAuth{"LOGIN", "", appUser + "*" + masterUser, masterSecret}},
		{"login-master without LOGIN uses PLAIN", ModeLoginMaster, []string{"PLAIN"}, sinkAuth{"PLAIN", "", appUser + "*" + masterUser, masterSecret}},
		{"passthrough", ModePassthrough, nil, sinkAuth{"PLAIN", "", appUser, appSecret}},
		{"passthrough without PLAIN uses LOGIN", ModePassthrough, []string{"LOGIN"}, sinkAuth{"LOGIN", "", appUser, appSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(s *sink) { s.mechs = tc.mechs }, func(s *Server) { s.Upstream.Mode = tc.mode })
			c := login(t, e.addr)
			if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
				t.Fatal(err)
			}
			if got := e.sink.authsSeen(); !slices.Equal(got, []sinkAuth{tc.want}) {
				t.Errorf("upstream AUTH %+v, want %+v", got, tc.want)
			}
			if msgs := e.sink.messages(); len(msgs) != 1 || string(msgs[0].data) != testMsg {
				t.Errorf("sink messages %+v", msgs)
			}
		})
	}
}

// TestUpstreamRefusesSeparatorInUsername: where the upstream login joins
// user and master user with the separator (login-master, and master over
// AUTH LOGIN), a user name holding it would name part of itself as the
// master user. The login is refused before anything is dialled (defence in
// depth: authn already treats such names as unknown users).
func TestUpstreamRefusesSeparatorInUsername(t *testing.T) {
	for _, tc := range []struct {
		mode, sep, user string
		mechs           []string
	}{
		{ModeLoginMaster, "%", "eve%bob", nil},
		{ModeLoginMaster, "", "eve*bob", nil},
		{ModeMaster, "%", "eve%bob", []string{"LOGIN"}},
	} {
		t.Run(tc.mode+" "+tc.user, func(t *testing.T) {
			sk := startSink(t, func(s *sink) { s.mechs = tc.mechs })
			u := &Upstream{Address: sk.addr, Mode: tc.mode, MasterUser: masterUser, MasterSecret: masterSecret, Separator: tc.sep}
			up, err := u.connect(context.Background(), identity{username: tc.user})
			if up != nil {
				up.abort()
			}
			if err == nil || !strings.Contains(err.Error(), "separator") {
				t.Errorf("connect = %v, want an error naming the separator", err)
			}
			if n, auths := sk.accepts.Load(), sk.authsSeen(); n != 0 || len(auths) != 0 {
				t.Errorf("upstream dialled %d times, logins %+v", n, auths)
			}
		})
	}
}

func TestXCLIENT(t *testing.T) {
	x := startXCLIENT(t)
	pg := &Server{
		Auth:           &fakeAuth{},
		Upstream:       &Upstream{Address: x.addr, Mode: ModeXCLIENT},
		AllowCleartext: true,
		ReadTimeout:    ioTimeout,
		Logger:         discardLogger(),
	}
	addr := startPassgate(t, pg, false)
	c := login(t, addr)
	if err := c.Mail(appUser, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMsg)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	// The upstream's 250 text (its queue id) reaches the client.
	if !strings.Contains(resp.StatusText, "queued as 4XYZ") {
		t.Errorf("DATA reply %q lacks the upstream's queue id", resp.StatusText)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	wantX := "XCLIENT LOGIN=alice@example.org ADDR=127.0.0.1 NAME=[UNAVAILABLE]"
	if !slices.Equal(x.xclients, []string{wantX}) {
		t.Fatalf("XCLIENT lines %q, want %q", x.xclients, wantX)
	}
	i := slices.Index(x.lines, wantX)
	want := []string{"EHLO passgate", wantX, "EHLO passgate", "MAIL FROM:<alice@example.org> BODY=8BITMIME", "RCPT TO:<bob@example.net>", "DATA"}
	if i < 1 || len(x.lines) < i-1+len(want) || !slices.Equal(x.lines[i-1:i-1+len(want)], want) {
		t.Errorf("upstream transcript %q, want %q", x.lines, want)
	}
	for _, l := range x.lines {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
			t.Errorf("AUTH sent in xclient mode: %q", l)
		}
	}
	if len(x.bodies) != 1 || string(x.bodies[0]) != testMsg {
		t.Errorf("upstream bodies %q", x.bodies)
	}
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
		if got := xclientAddr(mustAddr(t, tc.in)); got != tc.want {
			t.Errorf("xclientAddr(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUpstreamTLS(t *testing.T) {
	for _, mode := range []string{TLSStartTLS, TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			cfg, pool := testCert(t)
			e := newEnv(t, func(s *sink) { s.tlsMode, s.tlsConfig = mode, cfg }, func(s *Server) {
				s.Upstream.TLS = mode
				s.Upstream.TLSConfig = &tls.Config{RootCAs: pool}
			})
			c := login(t, e.addr)
			if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
				t.Fatal(err)
			}
			msgs := e.sink.messages()
			if len(msgs) != 1 || !msgs[0].tls || string(msgs[0].data) != testMsg {
				t.Fatalf("sink messages %+v, want one over TLS", msgs)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		cfg, _ := testCert(t)
		e := newEnv(t, func(s *sink) { s.tlsMode, s.tlsConfig = TLSImplicit, cfg }, func(s *Server) {
			s.Upstream.TLS = TLSImplicit
		})
		c := dial(t, e.addr)
		err := c.Auth(sasl.NewPlainClient("", appUser, appSecret))
		wantReply(t, err, 454, gosmtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure, try again later")
	})
}

func TestSTARTTLSThenAUTH(t *testing.T) {
	cfg, pool := testCert(t)
	e := newEnv(t, nil, func(s *Server) {
		s.TLSConfig = cfg
		s.AllowCleartext = false
	})

	// Before STARTTLS: STARTTLS offered, AUTH neither offered nor taken.
	tc := dialText(t, e.addr)
	ehlo := tc.transactWant("EHLO client.test", 250, "")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS: %q", ehlo)
	}
	if code, msg := tc.transact("AUTH PLAIN " + b64("\x00"+appUser+"\x00"+appSecret)); code != 523 {
		t.Errorf("AUTH before TLS: %d %s", code, msg)
	}
	tc.transactWant("MAIL FROM:<"+appUser+">", 530, "5.7.0 Authentication required")
	if n := len(e.auth.attempts); n != 0 {
		t.Errorf("Verify called %d times before TLS", n)
	}

	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gosmtp.NewClientStartTLS(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", appUser, appSecret)); err != nil {
		t.Fatal(err)
	}
	if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
		t.Fatal(err)
	}
	if msgs := e.sink.messages(); len(msgs) != 1 || string(msgs[0].data) != testMsg {
		t.Errorf("sink messages %+v", msgs)
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg, pool := testCert(t)
	s := startSink(t, nil)
	pg := &Server{
		Auth:        &fakeAuth{},
		Upstream:    &Upstream{Address: s.addr, Mode: ModeMaster, MasterUser: masterUser, MasterSecret: masterSecret},
		TLSConfig:   cfg,
		ReadTimeout: ioTimeout,
		Logger:      discardLogger(),
	}
	addr := startPassgate(t, pg, true)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := gosmtp.NewClient(conn)
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on implicit TLS")
	}
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH on implicit TLS: %v %q", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", appUser, appSecret)); err != nil {
		t.Fatal(err)
	}
	if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
		t.Fatal(err)
	}
	if msgs := s.messages(); len(msgs) != 1 || string(msgs[0].data) != testMsg {
		t.Errorf("sink messages %+v", msgs)
	}
}

func TestTenMiBExact(t *testing.T) {
	e := newEnv(t, nil, nil)
	body := genMessage(10 << 20)
	c := login(t, e.addr)
	if err := send(c, bytes.NewReader(body), "bob@example.net"); err != nil {
		t.Fatal(err)
	}
	msgs := e.sink.messages()
	if len(msgs) != 1 || !bytes.Equal(msgs[0].data, body) {
		t.Fatalf("sink did not get the 10 MiB message byte for byte")
	}
}

func TestBDAT(t *testing.T) {
	// go-smtp offers CHUNKING (RFC 3030): a BDAT message goes upstream as
	// DATA, byte for byte.
	e := newEnv(t, nil, nil)
	tc := dialText(t, e.addr)
	tc.transactWant("EHLO client.test", 250, "")
	tc.transactWant("AUTH PLAIN "+b64("\x00"+appUser+"\x00"+appSecret), 235, "")
	tc.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	tc.transactWant("RCPT TO:<bob@example.net>", 250, "")
	half := len(testMsg) / 2
	tc.c.Write([]byte("BDAT " + strconv.Itoa(half) + "\r\n" + testMsg[:half]))
	tc.expect(250)
	tc.c.Write([]byte("BDAT " + strconv.Itoa(len(testMsg)-half) + " LAST\r\n" + testMsg[half:]))
	tc.expect(250)
	if msgs := e.sink.messages(); len(msgs) != 1 || string(msgs[0].data) != testMsg {
		t.Errorf("sink messages %+v", msgs)
	}
}

func TestUpstreamCheck(t *testing.T) {
	s := startSink(t, nil)
	x := startXCLIENT(t)
	down := closedAddr(t)
	for _, tc := range []struct {
		name    string
		u       Upstream
		wantErr string
	}{
		{"master ok", Upstream{Address: s.addr, Mode: ModeMaster, MasterUser: "m", MasterSecret: "s"}, ""},
		{"xclient ok", Upstream{Address: x.addr, Mode: ModeXCLIENT}, ""},
		{"xclient not offered", Upstream{Address: s.addr, Mode: ModeXCLIENT}, "XCLIENT"},
		{"down", Upstream{Address: down, Mode: ModePassthrough}, "dial"},
		{"bad mode", Upstream{Address: s.addr, Mode: "magic"}, "mode"},
		{"master without secret", Upstream{Address: s.addr, Mode: ModeMaster}, "master user"},
		{"bad tls", Upstream{Address: s.addr, Mode: ModePassthrough, TLS: "ssl"}, "tls"},
		{"starttls not offered", Upstream{Address: s.addr, Mode: ModePassthrough, TLS: TLSStartTLS}, "STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.u.Check(context.Background())
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
