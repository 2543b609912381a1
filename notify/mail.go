package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy/upstream"
)

// SMTPLogin logs in to the submission upstream as a user
// (*upstream.SMTP implements it, so TLS, ca_file and the master-user and
// XCLIENT modes work as for the SMTP front end).
type SMTPLogin interface {
	Login(ctx context.Context, l upstream.Login) (*upstream.SMTPConn, error)
}

var _ SMTPLogin = (*upstream.SMTP)(nil)

// Mail defaults, used when the field is zero.
const (
	// DefaultMailTimeout bounds one try of a delivery.
	DefaultMailTimeout  = time.Minute
	DefaultMailAttempts = 3
	DefaultMailBackoff  = 5 * time.Second
)

// Mail delivers notifications as mail through the submission upstream.
type Mail struct {
	// Upstream is the submission server passgate relays to; required.
	Upstream SMTPLogin
	// From is the sender address (envelope and header); required.
	From string
	// LoginAs is the upstream account the message is submitted as. Empty:
	// the owner's own account (the upstream sees the owner send a
	// message to themselves).
	LoginAs string
	// Timeout bounds one try: login, envelope and message. Zero:
	// DefaultMailTimeout.
	Timeout time.Duration
	// Attempts is how many times a delivery is tried: an upstream that
	// cannot be reached or answers 4xx is tried again; a 5xx answer or a
	// refused login is final. Zero: DefaultMailAttempts.
	Attempts int
	// Backoff is the wait before the second try, doubled before each next
	// one. Zero: DefaultMailBackoff.
	Backoff time.Duration
	// Sleep waits d or until ctx ends. If nil, a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Send submits msg to the address to, logged in as LoginAs or owner,
// trying again as Attempts says. Every try sends the same message
// (Message-ID), so a receiver sees a duplicate for what it is.
func (m *Mail) Send(ctx context.Context, owner, to string, msg Message, now time.Time) error {
	data, err := compose(m.From, to, msg, now)
	if err != nil {
		return err
	}
	r := retry{attempts: orDefault(m.Attempts, DefaultMailAttempts),
		backoff: orDefault(m.Backoff, DefaultMailBackoff), sleep: m.Sleep}
	return r.do(ctx, func() error { return m.send(ctx, owner, to, data) })
}

// send makes one try.
func (m *Mail) send(ctx context.Context, owner, to string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(m.Timeout, DefaultMailTimeout))
	defer cancel()
	user := m.LoginAs
	if user == "" {
		user = owner
	}
	c, err := m.Upstream.Login(ctx, upstream.Login{Username: user})
	if err != nil {
		return fmt.Errorf("notification mail: %w", permanence(err))
	}
	defer c.Abort()
	if d, ok := ctx.Deadline(); ok {
		c.Client.CommandTimeout = time.Until(d)
	}
	if err := c.Client.Mail(m.From, nil); err != nil {
		return fmt.Errorf("notification mail: MAIL FROM: %w", permanence(err))
	}
	if err := c.Client.Rcpt(to, nil); err != nil {
		return fmt.Errorf("notification mail: RCPT TO: %w", permanence(err))
	}
	w, err := c.Client.Data()
	if err != nil {
		return fmt.Errorf("notification mail: DATA: %w", permanence(err))
	}
	c.ExtendWriteDeadline()
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("notification mail: DATA: %w", permanence(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("notification mail: DATA: %w", permanence(err))
	}
	c.Quit(5 * time.Second)
	return nil
}

// permanence marks err permanent when trying again cannot help: the
// upstream refused the login, or answered with a 5xx reply (RFC 5321
// §4.2.1).
func permanence(err error) error {
	var refused *upstream.RefusedError
	var se *gosmtp.SMTPError
	if errors.As(err, &refused) || (errors.As(err, &se) && se.Code >= 500) {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	return err
}
