package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	pgaccount "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// notifyAccounts are the accounts a notifier reads (language, aliases).
type notifyAccounts map[string]store.Account

func (a notifyAccounts) GetAccount(_ context.Context, name string) (store.Account, error) {
	acct, ok := a[name]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return acct, nil
}

// TestNotificationsReachTheMailbox delivers notifications as mail into the
// owners' real Dovecot mailboxes and reads them back over IMAP: through
// Dovecot's submission service with a master-user login (passgate's usual
// SMTP upstream), and through Postfix with XCLIENT. Dovecot submission
// relays to a private Postfix, which delivers over LMTP (Dovecot 2.3's
// submission can only relay over SMTP). A French account gets French.
func TestNotificationsReachTheMailbox(t *testing.T) {
	d := startDovecot(t)
	p := startPostfixWith(t, postfixOpts{Listen: d.RelayAddr, LMTP: d.LMTPAddr})
	en, enPW := d.newUser(t)
	fr, frPW := d.newUser(t)
	accounts := notifyAccounts{en: {Username: en}, fr: {Username: fr, Language: "fr"}}
	quiet := slog.New(slog.DiscardHandler)

	viaDovecot := &upstream.SMTP{Address: d.SubmitAddr, TLS: upstream.TLSStartTLS, Mode: upstream.ModeMaster,
		MasterUser: masterUser, MasterSecret: masterSecret, Logger: quiet,
		TLSConfig: &tls.Config{RootCAs: testcert.Pool(t, d.CertFile), ServerName: "localhost"}}
	viaPostfix := &upstream.SMTP{Address: p.SMTPAddr, Mode: upstream.ModeXCLIENT, Logger: quiet}
	for _, c := range []struct {
		name string
		up   *upstream.SMTP
	}{{"dovecot-submission-master", viaDovecot}, {"postfix-xclient", viaPostfix}} {
		t.Run(c.name, func(t *testing.T) {
			m := &countOutcomes{}
			n := &notify.Notifier{Accounts: accounts, Logger: quiet, Metrics: m,
				Mail:    &notify.Mail{Upstream: c.up, From: "passgate@example.org"},
				Address: smtp.AliasesOf(accounts).Primary(""), PortalURL: "https://mail.example.org/"}
			n.Start()
			now := time.Now().UTC().Truncate(time.Second)
			n.Notify(store.AuditRecord{Time: now, Username: en, Protocol: "portal", Result: pgaccount.ResultAppPasswordCreated,
				AppPasswordID: "p1", AppPasswordName: "Laptop <" + c.name + ">"})
			n.Notify(store.AuditRecord{Time: now, Username: fr, Protocol: "imap", Result: notify.ResultDeviceFirstUse,
				Remote: netip.MustParseAddrPort("192.0.2.7:40000"), AppPasswordID: "p2", AppPasswordName: "Téléphone " + c.name,
				Device: &store.Device{Client: "Thunderbird 128", Network: netip.MustParsePrefix("192.0.2.0/24")}})
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if m.sent != 2 {
				t.Fatalf("%d mails submitted, want 2 (outcomes %v)\n--- postfix log ---\n%s", m.sent, m.all, p.Log())
			}
			got := waitForMail(t, d, en, enPW, c.name)
			checkNotification(t, got, "New app password", "A new app password", "Laptop <"+c.name+">", "Laptop &lt;"+c.name+"&gt;")
			got = waitForMail(t, d, fr, frPW, c.name)
			checkNotification(t, got, "Première utilisation", "a été utilisé pour la première fois", "Thunderbird 128", "192.0.2.0/24")
		})
	}
}

// countOutcomes is a notify.Metrics that counts mails submitted.
type countOutcomes struct {
	sent int
	all  []string
}

func (c *countOutcomes) Notified(event, outcome string) {
	c.all = append(c.all, event+" "+outcome)
	if outcome == notify.OutcomeMailSent {
		c.sent++
	}
}

// notification is a mail as read back: its subject and parts by type.
type notification struct {
	subject, autoSubmitted string
	parts                  map[string]string
}

// waitForMail logs in to Dovecot's IMAP as user and returns the newest
// message whose raw text contains marker, waiting for Postfix's queue.
func waitForMail(t *testing.T, d *Dovecot, user, password, marker string) notification {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if raw := fetchMatching(t, d, user, password, marker); raw != nil {
			return parseNotification(t, raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification for %s (%s) in the mailbox after 60 s", user, marker)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fetchMatching returns the raw message of user's INBOX that contains
// marker (in its raw text or decoded subject), or nil.
func fetchMatching(t *testing.T, d *Dovecot, user, password, marker string) []byte {
	t.Helper()
	for _, raw := range fetchAll(t, d, user, password) {
		if mentions(raw, marker) {
			return raw
		}
	}
	return nil
}

// mentions reports whether the raw message holds marker in its raw text
// or decoded subject.
func mentions(raw []byte, marker string) bool {
	return bytes.Contains(raw, []byte(marker)) || strings.Contains(decodedSubject(raw), marker)
}

// fetchAll returns the raw messages of user's INBOX, oldest first.
func fetchAll(t *testing.T, d *Dovecot, user, password string) [][]byte {
	t.Helper()
	c, err := imapclient.DialStartTLS(d.IMAPAddr, &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: testcert.Pool(t, d.CertFile), ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("dial dovecot imap: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN %s: %v", user, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var all imap.SeqSet // 1:N (SeqSetNum(1, N) would be only the first and the last)
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var out [][]byte
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, b.Bytes)
		}
	}
	return out
}

func decodedSubject(raw []byte) string {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	s, _ := r.Header.Subject()
	return s
}

func parseNotification(t *testing.T, raw []byte) notification {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read notification: %v\n%s", err, raw)
	}
	n := notification{parts: map[string]string{}, autoSubmitted: r.Header.Get("Auto-Submitted")}
	n.subject, _ = r.Header.Subject()
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read notification part: %v", err)
		}
		ct, _, _ := part.Header.(*mail.InlineHeader).ContentType()
		body, _ := io.ReadAll(part.Body)
		n.parts[ct] = string(body)
	}
	return n
}

// checkNotification checks the subject and both parts: text shows
// textWant, HTML shows htmlWant (escaped as the owner's client gets it).
func checkNotification(t *testing.T, n notification, subject, both, textWant, htmlWant string) {
	t.Helper()
	if !strings.Contains(n.subject, subject) || n.autoSubmitted != "auto-generated" {
		t.Errorf("subject %q, Auto-Submitted %q; want %q, auto-generated", n.subject, n.autoSubmitted, subject)
	}
	text, html := n.parts["text/plain"], n.parts["text/html"]
	if !strings.Contains(text, both) || !strings.Contains(text, textWant) {
		t.Errorf("text part lacks %q or %q:\n%s", both, textWant, text)
	}
	if !strings.Contains(html, both) || !strings.Contains(html, htmlWant) {
		t.Errorf("HTML part lacks %q or %q:\n%s", both, htmlWant, html)
	}
}
