package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestIMAPSession runs a mail client's everyday commands through passgate
// after an app-password login: SELECT, SEARCH, FETCH, CREATE, MOVE, STATUS.
func TestIMAPSession(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	a := newAccount(t, d, pg, true)
	d.deliver(t, a.User, testMessage(a.User, "first message", "body one"))
	d.deliver(t, a.User, testMessage(a.User, "second message", "body two"))

	c := pg.login(t, viaTLS, a.User, a.AppPass)
	if n := selectInbox(t, c); n != 2 {
		t.Fatalf("INBOX has %d messages, want 2", n)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "second"}}}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH: %v", err)
	}
	uids := found.AllUIDs()
	if len(uids) != 1 {
		t.Fatalf("UID SEARCH subject second: %v, want one UID", uids)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids[0]), &imap.FetchOptions{
		Envelope:    true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}},
	}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH: %v", err)
	}
	if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.Subject != "second message" {
		t.Fatalf("UID FETCH: got %+v, want the second message", msgs)
	}
	for _, body := range msgs[0].BodySection {
		if !strings.Contains(string(body.Bytes), "body two") {
			t.Fatalf("UID FETCH body: %q, want %q", body.Bytes, "body two")
		}
	}
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatalf("CREATE Archive: %v", err)
	}
	if _, err := c.Move(imap.UIDSetNum(uids[0]), "Archive").Wait(); err != nil {
		t.Fatalf("UID MOVE: %v", err)
	}
	if n := selectInbox(t, c); n != 1 {
		t.Fatalf("INBOX has %d messages after MOVE, want 1", n)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 1 {
		t.Fatalf("STATUS Archive: %+v, %v; want 1 message", st, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
}

// TestIMAPIdle checks that a message delivered while a client idles through
// passgate reaches it as an unsolicited EXISTS (RFC 2177).
func TestIMAPIdle(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	a := newAccount(t, d, pg, true)

	exists := make(chan uint32, 16)
	c := pg.dial(t, viaStartTLS, &imapclient.UnilateralDataHandler{
		Mailbox: func(m *imapclient.UnilateralDataMailbox) {
			if m.NumMessages != nil {
				exists <- *m.NumMessages
			}
		},
	})
	if err := c.Login(a.User, a.AppPass).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	if n := selectInbox(t, c); n != 0 {
		t.Fatalf("INBOX has %d messages, want 0", n)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	d.deliver(t, a.User, testMessage(a.User, "while idling", "ping"))
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS within 10 s of the delivery")
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("DONE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE end: %v", err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after IDLE: %v", err)
	}
}

// TestIMAPLoginPolicy checks what each kind of secret gets: app passwords as
// printed or typed carelessly, primary passwords with and without MFA, wrong
// secrets and unknown users.
func TestIMAPLoginPolicy(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	mfa := newAccount(t, d, pg, true)
	plain := newAccount(t, d, pg, false)

	tests := []struct {
		name   string
		user   string
		secret string
		code   imap.ResponseCode // empty: the login must succeed
		text   string
	}{
		{"app password as printed", mfa.User, mfa.AppPass, "", ""},
		{"app password without spaces", mfa.User, spaceless(mfa.AppPass), "", ""},
		{"app password in upper case", mfa.User, upper(mfa.AppPass), "", ""},
		{"app password upper case without spaces", mfa.User, upper(spaceless(mfa.AppPass)), "", ""},
		{"username in upper case", strings.ToUpper(mfa.User), mfa.AppPass, "", ""},
		{"app password of a non-MFA user", plain.User, plain.AppPass, "", ""},
		{"primary password without MFA", plain.User, plain.Primary, "", ""},
		{"primary password with MFA", mfa.User, mfa.Primary, imap.ResponseCodeAlert, "Application password required: create one at " + portalURL},
		{"wrong secret", mfa.User, "abcd efgh jkmn pqrs", imap.ResponseCodeAuthenticationFailed, "Invalid credentials"},
		{"another user's app password", plain.User, mfa.AppPass, imap.ResponseCodeAuthenticationFailed, "Invalid credentials"},
		{"unknown user", "nobody-" + mfa.User, mfa.AppPass, imap.ResponseCodeAuthenticationFailed, "Invalid credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code != "" {
				wantCode(t, pg.loginError(t, viaTLS, tt.user, tt.secret), tt.code, tt.text)
				return
			}
			c := pg.login(t, viaTLS, tt.user, tt.secret)
			selectInbox(t, c)
		})
	}
	assertNoSecrets(t, pg.Output(), mfa.AppPass, mfa.Primary, plain.AppPass, plain.Primary, masterSecret)
}

// TestIMAPTransports logs in over each way a client reaches passgate.
func TestIMAPTransports(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true})
	a := newAccount(t, d, pg, true)
	d.deliver(t, a.User, testMessage(a.User, "transports", "x"))
	for _, via := range []string{viaPlain, viaStartTLS, viaTLS} {
		t.Run(via, func(t *testing.T) {
			c := pg.login(t, via, a.User, a.AppPass)
			if n := selectInbox(t, c); n != 1 {
				t.Fatalf("INBOX has %d messages, want 1", n)
			}
		})
	}
}

// TestIMAPPrivacyRequired checks that without allow_cleartext passgate hides
// LOGIN before TLS (RFC 3501 section 6.2.3, LOGINDISABLED) and refuses it
// with PRIVACYREQUIRED (RFC 5530), and allows it after STARTTLS.
func TestIMAPPrivacyRequired(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: false})
	a := newAccount(t, d, pg, true)

	c, greeting := dialRaw(t, pg.IMAPAddr)
	if !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q", greeting)
	}
	status, caps := c.transact("CAPABILITY")
	if !strings.HasPrefix(status, "OK") || !hasLine(caps, "LOGINDISABLED") || !hasLine(caps, "STARTTLS") || hasLine(caps, "AUTH=") {
		t.Fatalf("CAPABILITY before TLS: %q %q, want LOGINDISABLED and STARTTLS without AUTH=", status, caps)
	}
	if status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote(a.AppPass)); !strings.HasPrefix(status, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("LOGIN before TLS: %q, want NO [PRIVACYREQUIRED]", status)
	}
	if status, _ := c.transact("AUTHENTICATE PLAIN " + saslPlain("", a.User, a.AppPass)); !strings.HasPrefix(status, "NO") && !strings.HasPrefix(status, "BAD") {
		t.Fatalf("AUTHENTICATE before TLS: %q, want a refusal", status)
	}
	c.startTLS(pg.tlsConfig(t))
	status, caps = c.transact("CAPABILITY")
	if !strings.HasPrefix(status, "OK") || hasLine(caps, "LOGINDISABLED") || hasLine(caps, "STARTTLS") || !hasLine(caps, "AUTH=PLAIN") {
		t.Fatalf("CAPABILITY after STARTTLS: %q %q, want AUTH=PLAIN without LOGINDISABLED or STARTTLS", status, caps)
	}
	if status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote(a.AppPass)); !strings.HasPrefix(status, "OK") {
		t.Fatalf("LOGIN after STARTTLS: %q", status)
	}
	if status, _ := c.transact("SELECT INBOX"); !strings.HasPrefix(status, "OK") {
		t.Fatalf("SELECT after STARTTLS: %q", status)
	}
}

// TestIMAPLoginLiterals sends LOGIN with the username and password as
// literals (RFC 3501 section 4.3; RFC 7888 for the non-synchronizing form),
// as clients do for secrets with special characters.
func TestIMAPLoginLiterals(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true})
	a := newAccount(t, d, pg, true)

	t.Run("synchronizing", func(t *testing.T) {
		c, _ := dialRaw(t, pg.IMAPAddr)
		c.writeLine(fmt.Sprintf("a1 LOGIN {%d}", len(a.User)))
		if line := c.readLine(); !strings.HasPrefix(line, "+") {
			t.Fatalf("after the username literal's length: %q, want a continuation", line)
		}
		c.writeLine(fmt.Sprintf("%s {%d}", a.User, len(a.AppPass)))
		if line := c.readLine(); !strings.HasPrefix(line, "+") {
			t.Fatalf("after the password literal's length: %q, want a continuation", line)
		}
		c.writeLine(a.AppPass)
		status, _ := c.readTagged("a1")
		if !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN with literals: %q", status)
		}
		if !strings.Contains(status, "IMAP4rev1") {
			t.Errorf("LOGIN OK %q lacks the upstream's CAPABILITY", status)
		}
		if status, _ := c.transact("SELECT INBOX"); !strings.HasPrefix(status, "OK") {
			t.Fatalf("SELECT: %q", status)
		}
	})
	t.Run("non-synchronizing", func(t *testing.T) {
		c, _ := dialRaw(t, pg.IMAPAddr)
		_, caps := c.transact("CAPABILITY")
		if !hasLine(caps, "LITERAL+") && !hasLine(caps, "LITERAL-") {
			t.Skipf("passgate does not advertise LITERAL+ or LITERAL- before login: %q", caps)
		}
		c.writeLine(fmt.Sprintf("a9 LOGIN {%d+}", len(a.User)))
		c.writeLine(fmt.Sprintf("%s {%d+}", a.User, len(a.AppPass)))
		c.writeLine(a.AppPass)
		if status, _ := c.readTagged("a9"); !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN with LITERAL+: %q", status)
		}
	})
}

// TestIMAPUpstreamDown points passgate at a closed port: a correct login must
// get NO [UNAVAILABLE] (RFC 5530), promptly, and passgate keeps serving.
func TestIMAPUpstreamDown(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{Upstream: addr(freePort(t))})
	a := newAccount(t, d, pg, false)
	for i := range 2 {
		t.Run(fmt.Sprintf("attempt %d", i+1), func(t *testing.T) {
			wantCode(t, pg.loginError(t, viaTLS, a.User, a.AppPass), imap.ResponseCodeUnavailable, "")
		})
	}
}
