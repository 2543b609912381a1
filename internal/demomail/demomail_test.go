package demomail

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// TestSendThenRead sends a message as alice with the master login over
// SMTP and finds it in her INBOX over IMAP; a wrong master secret is
// refused on both.
func TestSendThenRead(t *testing.T) {
	srv, err := Start("proxy", "master-secret", []string{"alice@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	c, err := gosmtp.Dial(srv.SMTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("alice@example.org", "proxy", "wrong")); err == nil {
		t.Fatal("SMTP accepted a wrong master secret")
	}
	if err := c.Auth(sasl.NewPlainClient("alice@example.org", "proxy", "master-secret")); err != nil {
		t.Fatalf("SMTP master login: %v", err)
	}
	msg := "Subject: through the demo\r\n\r\nhello\r\n"
	if err := c.SendMail("alice@example.org", []string{"alice@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}

	ic, err := imapclient.DialInsecure(srv.IMAPAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login("alice@example.org*proxy", "wrong").Wait(); err == nil {
		t.Fatal("IMAP accepted a wrong master secret")
	}
	if err := ic.Login("alice@example.org*proxy", "master-secret").Wait(); err != nil {
		t.Fatalf("IMAP master login: %v", err)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 4 { // three seeded, one sent
		t.Fatalf("INBOX has %d messages, want 4", sel.NumMessages)
	}
}
