package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

func TestSenderPolicy(t *testing.T) {
	senders := func(_ context.Context, user string) ([]string, error) {
		if user != appUser {
			t.Errorf("Senders(%q)", user)
		}
		return []string{aliasAddr}, nil
	}
	failing := func(context.Context, string) ([]string, error) { return nil, errors.New("store down") }
	for _, tc := range []struct {
		name    string
		check   bool
		senders Senders
		from    string
		want    int // 250 or the reply code
	}{
		{"username", true, senders, appUser, 250},
		{"username, other case", true, senders, "Alice@EXAMPLE.org", 250},
		{"alias", true, senders, "sales@example.org", 250},
		{"forged", true, senders, "mallory@example.org", 553},
		{"alias without Senders", true, nil, "sales@example.org", 553},
		{"null sender", true, senders, "", 553},
		{"Senders fails", true, failing, "sales@example.org", 451},
		{"check off", false, nil, "mallory@example.org", 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(s *Server) {
				s.CheckSender = tc.check
				s.Senders = tc.senders
			})
			c := login(t, e.addr)
			err := c.Mail(tc.from, nil)
			switch tc.want {
			case 250:
				if err != nil {
					t.Fatalf("MAIL FROM:<%s>: %v", tc.from, err)
				}
			case 553:
				wantReply(t, err, 553, gosmtp.EnhancedCode{5, 7, 1}, "Sender address not owned by the authenticated user")
			default:
				wantReply(t, err, tc.want, gosmtp.EnhancedCode{4, 3, 0}, "")
			}
		})
	}
}

func TestUpstreamRepliesReachClient(t *testing.T) {
	t.Run("RCPT 550", func(t *testing.T) {
		e := newEnv(t, func(s *sink) {
			s.rejectRcpt = map[string]*gosmtp.SMTPError{"nobody@example.net": {
				Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "User unknown in virtual mailbox table"}}
		}, nil)
		c := login(t, e.addr)
		if err := c.Mail(appUser, nil); err != nil {
			t.Fatal(err)
		}
		wantReply(t, c.Rcpt("nobody@example.net", nil), 550, gosmtp.EnhancedCode{5, 1, 1}, "User unknown in virtual mailbox table")
		if err := c.Rcpt("bob@example.net", nil); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, testMsg)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if msgs := e.sink.messages(); len(msgs) != 1 || !slices.Equal(msgs[0].rcpts, []string{"bob@example.net"}) {
			t.Errorf("sink messages %+v", msgs)
		}
	})
	t.Run("552 at end of DATA", func(t *testing.T) {
		e := newEnv(t, func(s *sink) {
			s.dataErr = &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
		}, nil)
		c := login(t, e.addr)
		err := send(c, strings.NewReader(testMsg), "bob@example.net")
		wantReply(t, err, 552, gosmtp.EnhancedCode{5, 2, 2}, "Mailbox full")
		if msgs := e.sink.messages(); len(msgs) != 0 {
			t.Errorf("sink kept %d messages", len(msgs))
		}
		// The session goes on: the next transaction starts normally.
		if err := c.Mail(appUser, nil); err != nil {
			t.Errorf("MAIL after a refused message: %v", err)
		}
	})
	t.Run("upstream dies mid-message", func(t *testing.T) {
		e := newEnv(t, func(s *sink) { s.dieAfter = 64 << 10 }, nil)
		c := login(t, e.addr)
		err := send(c, bytes.NewReader(genMessage(1<<20)), "bob@example.net")
		wantReply(t, err, 451, gosmtp.EnhancedCode{4, 3, 0}, "Upstream failed, message not accepted")
		if msgs := e.sink.messages(); len(msgs) != 0 {
			t.Errorf("sink kept %d messages", len(msgs))
		}
	})
}

func TestClientAbortDiscardsUpstreamMessage(t *testing.T) {
	e := newEnv(t, func(s *sink) { s.onLogout = make(chan struct{}, 16) }, nil)
	c := dialText(t, e.addr)
	c.transactWant("EHLO client.test", 250, "")
	c.transactWant(plainIR("", appUser, appSecret), 235, "")
	c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	c.transactWant("RCPT TO:<bob@example.net>", 250, "")
	c.transactWant("DATA", 354, "")
	c.c.Write(genMessage(256 << 10)) // no final dot
	c.c.Close()
	e.sink.waitAllUpstreamEnded(t)
	if msgs := e.sink.messages(); len(msgs) != 0 {
		t.Errorf("upstream accepted %d partial messages", len(msgs))
	}
}

func TestSizeLimit(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.MaxMessageBytes = 1 << 20 })
	c := login(t, e.addr)
	if ok, v := c.Extension("SIZE"); !ok || v != "1048576" {
		t.Errorf("SIZE %q, want 1048576 (MaxMessageBytes below the upstream's)", v)
	}
	err := send(c, bytes.NewReader(genMessage(2<<20)), "bob@example.net")
	wantReply(t, err, 552, gosmtp.EnhancedCode{5, 3, 4}, "")
	if msgs := e.sink.messages(); len(msgs) != 0 {
		t.Fatalf("sink kept %d messages", len(msgs))
	}
	// The aborted upstream connection is replaced for the next message.
	if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
		t.Fatalf("message after the refused one: %v", err)
	}
	if msgs := e.sink.messages(); len(msgs) != 1 || string(msgs[0].data) != testMsg {
		t.Errorf("sink messages %+v", msgs)
	}
}

func TestSizeAdvertisedFromUpstream(t *testing.T) {
	e := newEnv(t, func(s *sink) {}, nil)
	c := dial(t, e.addr)
	want := strconv.Itoa(100 << 20) // the sink's MaxMessageBytes
	if ok, v := c.Extension("SIZE"); !ok || v != want {
		t.Errorf("SIZE %q, want the upstream's %s", v, want)
	}
	for _, ext := range []string{"8BITMIME", "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not advertised", ext)
		}
	}
}

func TestUpstreamConnectionReuse(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := login(t, e.addr)
	before := e.sink.accepts.Load()
	for i := range 2 {
		if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// An abandoned transaction is reset upstream (RSET) on the same
	// connection.
	if err := c.Mail(appUser, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("carol@example.net", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := send(c, strings.NewReader(testMsg), "dave@example.net"); err != nil {
		t.Fatal(err)
	}
	if n := e.sink.accepts.Load() - before; n != 0 {
		t.Errorf("%d new upstream connections for 3 messages on one session, want 0", n)
	}
	msgs := e.sink.messages()
	if len(msgs) != 3 || !slices.Equal(msgs[2].rcpts, []string{"dave@example.net"}) {
		t.Errorf("sink messages %+v", msgs)
	}
}

func TestUpstreamReconnectsAfterIdleClose(t *testing.T) {
	for _, mode := range []upstream.Mode{upstream.ModeMaster, upstream.ModePassthrough} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, nil, func(s *Server) { upstreamOf(s).Mode = mode })
			c := login(t, e.addr)
			if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
				t.Fatal(err)
			}
			before := e.sink.accepts.Load()
			e.sink.killConns() // the upstream closes idle connections
			if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
				t.Fatalf("message after the upstream closed: %v", err)
			}
			if n := e.sink.accepts.Load() - before; n != 1 {
				t.Errorf("%d new upstream connections, want 1", n)
			}
			auths := e.sink.authsSeen()
			if len(auths) != 2 || auths[0] != auths[1] {
				t.Errorf("upstream logins %+v, want the same one twice", auths)
			}
			if msgs := e.sink.messages(); len(msgs) != 2 {
				t.Errorf("sink has %d messages, want 2", len(msgs))
			}
		})
	}
}

func TestParametersPassThrough(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := login(t, e.addr)
	err := c.Mail(appUser, &gosmtp.MailOptions{
		Return: gosmtp.DSNReturnHeaders, EnvelopeID: "env-1", UTF8: true, Size: int64(len(testMsg)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net", &gosmtp.RcptOptions{
		Notify:                []gosmtp.DSNNotify{gosmtp.DSNNotifyFailure},
		OriginalRecipientType: gosmtp.DSNAddressTypeRFC822, OriginalRecipient: "bob@example.net",
	}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMsg)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := e.sink.messages()
	if len(msgs) != 1 {
		t.Fatalf("sink has %d messages", len(msgs))
	}
	o := msgs[0].opts
	if o.Return != gosmtp.DSNReturnHeaders || o.EnvelopeID != "env-1" || !o.UTF8 ||
		o.Size != int64(len(testMsg)) || o.Body != gosmtp.Body8BitMIME {
		t.Errorf("upstream MAIL options %+v", o)
	}
	if r := msgs[0].rOpts; len(r) != 1 || !slices.Equal(r[0].Notify, []gosmtp.DSNNotify{gosmtp.DSNNotifyFailure}) ||
		r[0].OriginalRecipient != "bob@example.net" {
		t.Errorf("upstream RCPT options %+v", r)
	}
}

func TestParametersUpstreamLacks(t *testing.T) {
	t.Run("not advertised", func(t *testing.T) {
		e := newEnv(t, func(s *sink) { s.noDSN, s.noUTF8 = true, true }, nil)
		c := dialText(t, e.addr)
		ehlo := c.transactWant("EHLO client.test", 250, "")
		if strings.Contains(ehlo, "DSN") || strings.Contains(ehlo, "SMTPUTF8") {
			t.Errorf("EHLO advertises what the upstream lacks: %q", ehlo)
		}
		c.transactWant(plainIR("", appUser, appSecret), 235, "")
		if code, _ := c.transact("MAIL FROM:<" + appUser + "> RET=HDRS"); code/100 != 5 {
			t.Errorf("RET without DSN: %d", code)
		}
		if code, _ := c.transact("MAIL FROM:<" + appUser + "> SMTPUTF8"); code/100 != 5 {
			t.Errorf("SMTPUTF8 unsupported: %d", code)
		}
	})
	// When the start-up probe failed, DSN and SMTPUTF8 are advertised and
	// the session's upstream decides: 555 rather than a silent drop.
	t.Run("refused per message", func(t *testing.T) {
		s := startSink(t, func(s *sink) { s.noDSN, s.noUTF8 = true, true })
		u := &upstream.SMTP{Address: s.addr, Mode: upstream.ModeMaster, MasterUser: masterUser, MasterSecret: masterSecret}
		up, err := u.Login(context.Background(), upstream.Login{Username: appUser})
		if err != nil {
			t.Fatal(err)
		}
		defer up.Quit(ioTimeout)
		for _, tc := range []struct {
			opts  gosmtp.MailOptions
			param string
		}{
			{gosmtp.MailOptions{Return: gosmtp.DSNReturnFull}, "DSN"},
			{gosmtp.MailOptions{EnvelopeID: "x"}, "DSN"},
			{gosmtp.MailOptions{UTF8: true}, "SMTPUTF8"},
		} {
			wantReply(t, mailSupported(up, &tc.opts), 555, gosmtp.EnhancedCode{5, 5, 4},
				tc.param+" not supported by the upstream server")
		}
		if err := mailSupported(up, &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME, Size: 10}); err != nil {
			t.Errorf("8BITMIME and SIZE refused: %v", err)
		}
	})
}

func TestUpstream421BecomesTemporary(t *testing.T) {
	e := newEnv(t, func(s *sink) {
		s.rejectRcpt = map[string]*gosmtp.SMTPError{"slow@example.net": {
			Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many connections"}}
	}, nil)
	c := login(t, e.addr)
	if err := c.Mail(appUser, nil); err != nil {
		t.Fatal(err)
	}
	wantReply(t, c.Rcpt("slow@example.net", nil), 451, gosmtp.EnhancedCode{4, 7, 0}, "Too many connections")
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	// The upstream said it is closing: the next message gets a new one.
	if err := send(c, strings.NewReader(testMsg), "bob@example.net"); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptedReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ec   gosmtp.EnhancedCode
		text string
	}{
		{"2.0.0 Ok: queued as ABC", gosmtp.EnhancedCode{2, 0, 0}, "Ok: queued as ABC"},
		{"2.6.0 <id@host> [InternalId=1] Queued mail for delivery", gosmtp.EnhancedCode{2, 6, 0}, "<id@host> [InternalId=1] Queued mail for delivery"},
		{"Ok", gosmtp.EnhancedCode{2, 0, 0}, "Ok"},
		{"", gosmtp.EnhancedCode{2, 0, 0}, "OK"},
		{"5.0.0 odd", gosmtp.EnhancedCode{2, 0, 0}, "5.0.0 odd"},
	} {
		wantReply(t, acceptedReply(tc.in), 250, tc.ec, tc.text)
	}
}

// accountMap is Accounts from a map; a nil map fails like a store that is
// down.
type accountMap map[string]store.Account

func (m accountMap) GetAccount(_ context.Context, username string) (store.Account, error) {
	if m == nil {
		return store.Account{}, store.ErrUnavailable
	}
	a, ok := m[username]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}

// TestAliasesOf: the senders of an account are its aliases in the store;
// an unknown account has none; a store failure is an error (451).
func TestAliasesOf(t *testing.T) {
	st := accountMap{appUser: {Username: appUser, Aliases: []string{aliasAddr}}}
	if got, err := AliasesOf(st)(t.Context(), appUser); err != nil || !slices.Equal(got, []string{aliasAddr}) {
		t.Errorf("aliases of %s: %v, %v", appUser, got, err)
	}
	if got, err := AliasesOf(st)(t.Context(), "nobody@example.org"); err != nil || got != nil {
		t.Errorf("aliases of an unknown account: %v, %v", got, err)
	}
	if _, err := AliasesOf(accountMap(nil))(t.Context(), appUser); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("store down: %v, want store.ErrUnavailable", err)
	}
}
