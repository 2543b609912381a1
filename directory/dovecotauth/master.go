package dovecotauth

import (
	"fmt"
)

// masterHandshake runs the auth-master (userdb socket) handshake: the server
// sends VERSION and SPID, the client VERSION.
func (c *conn) masterHandshake() error {
	c.deadline()
	if err := c.send("VERSION", "1", "1"); err != nil {
		return err
	}
	for lines := 0; ; lines++ {
		f, err := c.readLine()
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		switch {
		case lines > 10:
			return fmt.Errorf("%w: handshake without SPID", errProtocol)
		case f[0] == "VERSION" && (len(f) < 2 || f[1] != "1"):
			return fmt.Errorf("%w: server speaks version %q, want 1", errProtocol, f[1:])
		case f[0] == "SPID":
			return nil
		}
	}
}

// userReply is the answer to USER: found (with the canonical user name and
// the userdb fields), not found, or a failure of the userdb (fail, with
// Dovecot's message).
type userReply struct {
	found  bool
	user   string
	fields params
	fail   string
}

// user looks name up in the userdb. Its error is a failure of the
// connection or the protocol only.
func (c *conn) user(service, name string) (userReply, error) {
	c.deadline()
	id := c.id()
	if err := c.send("USER", id, escape(name), "service="+escape(service)); err != nil {
		return userReply{}, err
	}
	f, err := c.readLine()
	if err != nil {
		return userReply{}, err
	}
	if len(f) < 2 || f[1] != id {
		return userReply{}, fmt.Errorf("%w: reply %q to USER %s", errProtocol, first(f), id)
	}
	switch {
	case f[0] == "USER" && len(f) >= 3:
		return userReply{found: true, user: f[2], fields: parseParams(f[3:])}, nil
	case f[0] == "NOTFOUND":
		return userReply{}, nil
	case f[0] == "FAIL":
		msg := "userdb lookup failed"
		if len(f) > 2 && f[2] != "" {
			msg = f[2]
		}
		return userReply{fail: msg}, nil
	}
	return userReply{}, fmt.Errorf("%w: unexpected %q reply to USER", errProtocol, f[0])
}
