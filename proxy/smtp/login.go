package smtp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// checkUsername refuses, before anything is dialled, a user name holding
// the separator in the modes that may join user and master user with it
// (login-master; master over AUTH LOGIN): "eve%bob" + "%" + "proxy" would
// make the upstream read "bob%proxy" as the master user. authn refuses
// such names already; this is the last line.
func (u *Upstream) checkUsername(user string) error {
	if (u.Mode == ModeLoginMaster || u.Mode == ModeMaster) && strings.Contains(user, u.separator()) {
		return fmt.Errorf("upstream login: username contains the master user separator %q", u.separator())
	}
	return nil
}

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
