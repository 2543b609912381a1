package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/demomail"
	"github.com/passgate/passgate/proxy/upstream"
)

// flaky is a real upstream whose first fail logins fail as an unreachable
// one does; it counts the logins.
type flaky struct {
	up     *upstream.SMTP
	fail   int
	logins int
}

func (f *flaky) Login(ctx context.Context, l upstream.Login) (*upstream.SMTPConn, error) {
	f.logins++
	if f.logins <= f.fail {
		return nil, fmt.Errorf("upstream dial: %w", upstream.ErrUnavailable)
	}
	return f.up.Login(ctx, l)
}

// mailServer is the demo's mail server as a master-login upstream.
func mailServer(t *testing.T) (*demomail.Server, *upstream.SMTP) {
	t.Helper()
	srv, err := demomail.Start("m", "master-secret", []string{"alice@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, &upstream.SMTP{Address: srv.SMTPAddr().String(), Mode: upstream.ModeMaster,
		MasterUser: "m", MasterSecret: "master-secret"}
}

// An unreachable upstream is tried again with doubling backoff and the
// mail arrives once; a 5xx answer (unknown recipient) is final.
func TestMailRetries(t *testing.T) {
	srv, up := mailServer(t)
	var sleeps []time.Duration
	f := &flaky{up: up, fail: 2}
	m := &Mail{Upstream: f, From: "passgate@example.org",
		Sleep: func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil }}
	msg, err := Render("en", dataOf(record(account.ResultAppPasswordCreated), ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "alice@example.org", "alice@example.org", msg, t0); err != nil {
		t.Fatalf("Send after two unreachable tries: %v", err)
	}
	if f.logins != 3 || len(sleeps) != 2 || sleeps[0] != DefaultMailBackoff || sleeps[1] != 2*DefaultMailBackoff {
		t.Errorf("%d logins, backoff %v; want 3 and [5s 10s]", f.logins, sleeps)
	}
	if n := countSubject(t, srv, msg.Subject); n != 1 {
		t.Errorf("%d copies in the INBOX, want 1", n)
	}

	f = &flaky{up: up}
	m.Upstream = f
	err = m.Send(context.Background(), "alice@example.org", "nobody@example.org", msg, t0)
	if err == nil || !errors.Is(err, errPermanent) || f.logins != 1 {
		t.Errorf("unknown recipient: %v after %d logins, want a permanent error after 1", err, f.logins)
	}
}

// countSubject counts the messages of alice's INBOX with subject.
func countSubject(t *testing.T, srv *demomail.Server, subject string) int {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.IMAPAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org*m", "master-secret").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, sel.NumMessages), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Envelope != nil && strings.Contains(m.Envelope.Subject, subject) {
			n++
		}
	}
	return n
}
