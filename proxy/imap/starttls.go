package imap

import "errors"

// cmdStartTLS answers STARTTLS (RFC 3501 §6.2.1) and runs the handshake.
// Bytes the client sent after the STARTTLS line, before the handshake,
// refuse the command: accepting them would let a man in the middle inject
// commands into the TLS session (CVE-2021-33515 class, RFC 3501 §6.2.1
// "the server MUST discard any pipelined commands"). The check covers what
// the reader buffered; what is still in flight goes to the TLS handshake,
// which rejects it as garbage.
func (c *conn) cmdStartTLS(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	switch {
	case c.tls:
		return bad("TLS is already active")
	case c.srv.TLSConfig == nil:
		return bad("STARTTLS not available")
	case c.r.Buffered() > 0:
		return &respError{status: "BAD", text: "Data pipelined after STARTTLS", close: true}
	}
	if err := c.Write(cmd.tag + " OK Begin TLS negotiation now"); err != nil {
		return err
	}
	tc, err := c.StartTLS(c.ctx, c.srv.TLSConfig)
	if err != nil {
		c.log.Debug("imap starttls handshake failed", "err", err)
		return errors.Join(errDone, err)
	}
	c.r.Reset(tc) // empty (checked above); keeps the MaxLine buffer
	c.tls = true
	return nil
}
