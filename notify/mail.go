package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/passgate/passgate/proxy/upstream"
)

// SMTPLogin logs in to the submission upstream as a user
// (*upstream.SMTP implements it, so TLS, ca_file and the master-user and
// XCLIENT modes work as for the SMTP front end).
type SMTPLogin interface {
	Login(ctx context.Context, l upstream.Login) (*upstream.SMTPConn, error)
}

var _ SMTPLogin = (*upstream.SMTP)(nil)

// DefaultMailTimeout bounds one mail delivery when Mail.Timeout is zero.
const DefaultMailTimeout = time.Minute

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
	// Timeout bounds a delivery: login, envelope and message. Zero:
	// DefaultMailTimeout.
	Timeout time.Duration
}

// Send submits msg to the address to, logged in as LoginAs or owner.
func (m *Mail) Send(ctx context.Context, owner, to string, msg Message, now time.Time) error {
	data, err := compose(m.From, to, msg, now)
	if err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultMailTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	user := m.LoginAs
	if user == "" {
		user = owner
	}
	c, err := m.Upstream.Login(ctx, upstream.Login{Username: user})
	if err != nil {
		return fmt.Errorf("notification mail: %w", err)
	}
	defer c.Abort()
	if d, ok := ctx.Deadline(); ok {
		c.Client.CommandTimeout = time.Until(d)
	}
	if err := c.Client.Mail(m.From, nil); err != nil {
		return fmt.Errorf("notification mail: MAIL FROM: %w", err)
	}
	if err := c.Client.Rcpt(to, nil); err != nil {
		return fmt.Errorf("notification mail: RCPT TO: %w", err)
	}
	w, err := c.Client.Data()
	if err != nil {
		return fmt.Errorf("notification mail: DATA: %w", err)
	}
	c.ExtendWriteDeadline()
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("notification mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("notification mail: DATA: %w", err)
	}
	c.Quit(5 * time.Second)
	return nil
}
