package smtp

import (
	"errors"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// login authenticates the upstream session as id.username by the mode:
// PLAIN when the upstream offers it (RFC 4616), else LOGIN (Exchange-style
// servers), except that login-master prefers LOGIN.
func (u *Upstream) login(c *gosmtp.Client, id identity) error {
	plain, login := c.SupportsAuth("PLAIN"), c.SupportsAuth("LOGIN")
	var mech sasl.Client
	switch u.Mode {
	case ModeMaster:
		switch {
		case plain:
			mech = sasl.NewPlainClient(id.username, u.MasterUser, u.MasterSecret)
		case login:
			mech = newLoginClient(id.username+u.separator()+u.MasterUser, u.MasterSecret)
		}
	case ModeLoginMaster:
		user := id.username + u.separator() + u.MasterUser
		switch {
		case login:
			mech = newLoginClient(user, u.MasterSecret)
		case plain:
			mech = sasl.NewPlainClient("", user, u.MasterSecret)
		}
	case ModePassthrough:
		switch {
		case plain:
			mech = sasl.NewPlainClient("", id.username, id.secret)
		case login:
			mech = newLoginClient(id.username, id.secret)
		}
	default:
		return errors.New("no AUTH in mode " + u.Mode)
	}
	if mech == nil {
		return errors.New("upstream offers neither AUTH PLAIN nor AUTH LOGIN")
	}
	return c.Auth(mech)
}
