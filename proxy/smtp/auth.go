package smtp

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// AuthMechanisms lists PLAIN and LOGIN; go-smtp offers them only on TLS
// connections unless AllowCleartext (RFC 4954 §4).
func (ss *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// Auth returns the server side of mech.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(authzid, username, secret string) error {
			return ss.authenticate(sasl.Plain, authzid, username, secret)
		}), nil
	case sasl.Login:
		return newLoginServer(func(username, secret string) error {
			return ss.authenticate(sasl.Login, "", username, secret)
		}), nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// authenticate decides a login and, on OK, logs in upstream at once, so that
// an unreachable upstream answers the AUTH (454) and nothing is accepted.
func (ss *session) authenticate(mech, authzid, username, secret string) error {
	log := ss.log().With("mech", mech)
	// RFC 4616 §2: an authzid other than the user asks to act as someone
	// else, which passgate does not allow.
	if authzid != "" && authzid != username {
		log.Info("smtp auth", "user", username, "result", "authzid-denied")
		return ss.failed(errBadCredentials)
	}
	d, err := ss.verify(authn.Attempt{
		Username:  username,
		Secret:    secret,
		Protocol:  store.ScopeSMTP,
		RemoteIP:  ss.remote.Addr(),
		Mechanism: mech,
	})
	if err != nil {
		log.Warn("smtp auth", "user", username, "result", "error", "err", err)
		return errTempAuth
	}
	user := d.Username
	if user == "" {
		user = username
	}
	log = log.With("user", user)
	switch d.Result {
	case authn.OK:
	case authn.PrimaryRefusedMFA:
		log.Info("smtp auth", "result", d.Result)
		return ss.failed(errMFA(ss.srv.mfaMessage()))
	default:
		// BadSecret, UnknownUser, Disabled, Expired, AddressDenied and
		// ScopeDenied look the same to the client; the log tells them apart.
		log.Info("smtp auth", "result", d.Result, "app_password_id", d.AppPasswordID)
		return ss.failed(errBadCredentials)
	}
	a := &authState{decision: d}
	if a.decision.Username == "" {
		a.decision.Username = username
	}
	if ss.srv.Upstream.Mode == ModePassthrough {
		a.secret = secret
	}
	up, err := ss.srv.Upstream.connect(ss.ctx, ss.identity(a))
	if err != nil {
		log.Warn("smtp auth", "result", "upstream-error", "app_password_id", d.AppPasswordID,
			"upstream", ss.srv.Upstream.Address, "err", err)
		return errTempAuth
	}
	ss.mu.Lock()
	ss.setUpstream(up)
	ss.mu.Unlock()
	a.remove = ss.register(a.decision)
	ss.auth.Store(a)
	if ss.ctx.Err() != nil { // Logout ran meanwhile and saw no authState
		a.remove()
	}
	log.Info("smtp auth", "result", d.Result, "app_password_id", d.AppPasswordID)
	return nil
}

// failed counts a failed login on the connection; the last one allowed
// gets 421 and closes it.
func (ss *session) failed(reply error) error {
	if ss.cc == nil {
		return reply
	}
	if ss.cc.failed.Add(1) >= ss.srv.maxFailedLogins() {
		ss.cc.closeAfter.Store(true)
		return errTooManyFailures
	}
	return reply
}

// verify calls the Authenticator. A panic becomes an error whose text is the
// panic value only for runtime errors (which carry no data): go-smtp would
// log any other value, which might hold the secret.
func (ss *session) verify(a authn.Attempt) (d authn.Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			if re, ok := p.(runtime.Error); ok {
				err = fmt.Errorf("verify panicked: %w", re)
			} else {
				err = errors.New("verify panicked")
			}
		}
	}()
	return ss.srv.Auth.Verify(ss.ctx, a)
}
