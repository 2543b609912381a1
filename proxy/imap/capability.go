package imap

import "strings"

// capabilities lists what the pre-auth phase implements (RFC 3501 §7.2.1).
// Before TLS, when cleartext logins are not allowed, LOGINDISABLED replaces
// the AUTH= mechanisms (RFC 3501 §6.2.3); STARTTLS is offered only on a
// plain connection with a TLS configuration (§6.2.1).
func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID"}
	if !c.tls && c.srv.TLSConfig != nil {
		caps = append(caps, "STARTTLS")
	}
	if c.cleartextOK() {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return strings.Join(caps, " ")
}

// cleartextOK reports whether a login may be sent on this connection.
func (c *conn) cleartextOK() bool { return c.tls || c.srv.AllowCleartext }

// errPrivacyRequired refuses a login on a connection without TLS (RFC 5530
// PRIVACYREQUIRED, RFC 3501 §6.2.3).
var errPrivacyRequired = &respError{status: "NO", code: "PRIVACYREQUIRED", text: "TLS required: use STARTTLS"}

// cmdCapability answers CAPABILITY (RFC 3501 §6.1.1).
func (c *conn) cmdCapability(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	return c.write("* CAPABILITY "+c.capabilities(), cmd.tag+" OK CAPABILITY completed")
}

// cmdNoop answers NOOP (RFC 3501 §6.1.2).
func (c *conn) cmdNoop(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	return c.write(cmd.tag + " OK NOOP completed")
}

// cmdLogout answers LOGOUT (RFC 3501 §6.1.3): BYE, tagged OK, close.
func (c *conn) cmdLogout(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	if err := c.write("* BYE Logging out", cmd.tag+" OK LOGOUT completed"); err != nil {
		return err
	}
	return errDone
}
