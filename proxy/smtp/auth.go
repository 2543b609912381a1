package smtp

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/emersion/go-sasl"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// AuthMechanisms lists PLAIN and LOGIN; go-smtp offers them only on TLS
// connections unless AllowCleartext (RFC 4954 §4).
func (ss *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// Auth returns the server side of mech (RFC 4954 §4: 504 5.5.4 for a
// mechanism passgate does not offer).
func (ss *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return newPlainServer(func(authzid, username, secret string) error {
			return ss.authenticate(sasl.Plain, authzid, username, secret)
		}), nil
	case sasl.Login:
		return newLoginServer(func(username, secret string) error {
			return ss.authenticate(sasl.Login, "", username, secret)
		}), nil
	}
	return nil, errUnknownMechanism
}

// maxLoggedHelo bounds the EHLO name in a log line (RFC 1035 §2.3.4: 255
// octets for a domain name).
const maxLoggedHelo = 255

// attempt is the login as the Authenticator sees it. Client is left empty:
// the EHLO name is a host name the client machine claims (often its
// personal name, "localhost" or an address literal), not the mail client's
// name and version that IMAP ID gives and the audit shows as "client". It
// is logged with the attempt instead ("helo"), and first-use binding
// compares it (Device.Client; an address literal is no name).
func (ss *session) attempt(mech, username, secret string) authn.Attempt {
	return authn.Attempt{
		Username:  username,
		Secret:    secret,
		Protocol:  store.ScopeSMTP,
		RemoteIP:  ss.remote.Addr(),
		Mechanism: mech,
		TLS:       proxy.TLSVersion(ss.nc),
		SessionID: ss.id,
		Device:    proxy.NewDevice(proxy.HeloName(ss.conn.Hostname()), ss.tlsFingerprint(), ss.remote.Addr()),
	}
}

// authLog is the logger of one AUTH: session, mechanism, TLS and EHLO name.
func (ss *session) authLog(a authn.Attempt) *slog.Logger {
	helo := ss.conn.Hostname()
	if len(helo) > maxLoggedHelo {
		helo = helo[:maxLoggedHelo]
	}
	return ss.log().With("mech", a.Mechanism, "tls", a.TLS, "helo", helo)
}

// authenticate decides a login and, on OK, logs in upstream at once, so that
// an unreachable upstream answers the AUTH (454) and nothing is accepted.
func (ss *session) authenticate(mech, authzid, username, secret string) error {
	a := ss.attempt(mech, username, secret)
	log := ss.authLog(a)
	// RFC 4616 §2: an authzid other than the user asks to act as someone
	// else, which passgate does not allow.
	if authzid != "" && !store.SameUsername(authzid, username) {
		log.Info("smtp auth", "user", proxy.LoggedUsername(username), "result", "authzid-denied")
		return ss.failed(errBadCredentials)
	}
	d, err := ss.verify(a)
	if err != nil {
		log.Warn("smtp auth", "user", proxy.LoggedUsername(username), "result", "error", "err", err)
		return errTempAuth
	}
	user := d.Username
	if user == "" {
		user = proxy.LoggedUsername(username)
	}
	log = log.With("user", user)
	switch d.Result {
	case authn.OK:
	case authn.PrimaryRefusedMFA:
		log.Info("smtp auth", "result", d.Result)
		return ss.failed(errMFA(ss.srv.mfaMessage()))
	case authn.DeviceRefused:
		log.Info("smtp auth", "result", d.Result, "app_password_id", d.AppPasswordID, "tls_fingerprint", a.Device.TLS)
		return ss.failed(errDeviceRefused(ss.srv.deviceMessage()))
	case authn.RateLimited:
		// Nothing was verified: a temporary failure (RFC 4954 §6), so that
		// a blocked owner's client says "try again later" rather than
		// asking for a password that is right.
		log.Info("smtp auth", "result", d.Result)
		return ss.failed(errRateLimited)
	default:
		// BadSecret, UnknownUser, Disabled, Expired, AddressDenied and
		// ScopeDenied look the same to the client; the log tells them apart.
		log.Info("smtp auth", "result", d.Result, "app_password_id", d.AppPasswordID)
		return ss.failed(errBadCredentials)
	}
	if d.Username == "" {
		d.Username = username
	}
	return ss.loggedIn(log, a, d, secret)
}

// loggedIn logs in upstream after an OK decision d and makes the session
// authenticated; an upstream failure is answered 454 and audited.
func (ss *session) loggedIn(log *slog.Logger, a authn.Attempt, d authn.Decision, secret string) error {
	st := &authState{decision: d}
	if ss.srv.Upstream.NeedsClientSecret() {
		st.secret = secret
	}
	up, err := ss.srv.Upstream.Login(ss.ctx, ss.login(st))
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &refused):
		log.Error("smtp auth", "result", "upstream-refused", "app_password_id", d.AppPasswordID,
			"upstream", ss.srv.Upstream, "err", err, "hint", refused.Hint())
	case err != nil:
		log.Warn("smtp auth", "result", "upstream-error", "app_password_id", d.AppPasswordID,
			"upstream", ss.srv.Upstream, "err", err)
	}
	if err != nil {
		proxy.AuditUpstreamError(ss.ctx, ss.srv.Auth, a, d)
		return ss.upstreamFailed(err)
	}
	if st.remove, err = ss.register(st.decision); err != nil {
		up.Abort()
		if errors.Is(err, sessions.ErrLimit) {
			log.Info("smtp auth", "result", authn.AuditSessionLimit, "app_password_id", d.AppPasswordID)
			proxy.AuditSessionLimit(ss.ctx, ss.srv.Auth, a, d)
			if ss.cc != nil {
				ss.cc.closeAfter.Store(true)
			}
			return errSessionLimit
		}
		if errors.Is(err, sessions.ErrRevoked) {
			log.Info("smtp auth", "result", "revoked-during-login", "app_password_id", d.AppPasswordID, "err", err)
			return ss.failed(errBadCredentials)
		}
		log.Warn("smtp auth", "result", "error", "app_password_id", d.AppPasswordID, "err", err)
		return errTempAuth
	}
	ss.mu.Lock()
	ss.setUpstream(up)
	ss.mu.Unlock()
	ss.auth.Store(st)
	if ss.cc != nil {
		ss.cc.authed.Store(true)
	}
	if ss.ctx.Err() != nil { // Logout ran meanwhile and saw no authState
		st.remove()
	}
	log.Info("smtp auth", "result", d.Result, "app_password_id", d.AppPasswordID)
	return nil
}

// upstreamFailed is the reply to a failed upstream login: 535 5.7.8 with
// a text the user or an admin can act on when only they can repair it (link
// the mailbox again; grant a permission), 454 4.7.0 otherwise.
func (ss *session) upstreamFailed(err error) error {
	var relink *upstream.RelinkError
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &relink):
		return ss.failed(errUpstreamRefused(ss.srv.relinkMessage()))
	case errors.As(err, &refused) && refused.Action != "":
		return ss.failed(errUpstreamRefused(proxy.UpstreamRefusedText(refused.Action)))
	}
	return errTempAuth
}

// failed counts a failed login on the connection; the last one allowed
// gets 421 and closes it.
func (ss *session) failed(reply error) error {
	if ss.cc == nil {
		return reply
	}
	if ss.cc.failed.Add(1) >= int32(ss.srv.limits().MaxFailedLogins) {
		ss.cc.closeAfter.Store(true)
		return errTooManyFailures
	}
	return reply
}

// verify calls the Authenticator. A panic becomes an error that describes
// it without its data (proxy.PanicText): go-smtp would log the value, which
// might hold the secret.
func (ss *session) verify(a authn.Attempt) (d authn.Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("verify panicked: %s", proxy.PanicText(p))
		}
	}()
	return ss.srv.Auth.Verify(ss.ctx, a)
}
