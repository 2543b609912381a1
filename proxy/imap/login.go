package imap

import (
	"context"
	"errors"
	"log/slog"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// Replies to failed logins (RFC 5530 response codes). Every credential
// failure gets the same bytes, whatever the reason (DESIGN.md "Responses
// users see").
var (
	errAuthFailed = &respError{status: "NO", code: "AUTHENTICATIONFAILED",
		text: "Invalid credentials", failure: true}
	errAuthUnavailable = &respError{status: "NO", code: "UNAVAILABLE",
		text: "Authentication service unavailable, try again later", failure: true}
	errUpstreamUnavailable = &respError{status: "NO", code: "UNAVAILABLE",
		text: "Mail server unavailable, try again later", failure: true}
	errUpstreamRefused = &respError{status: "NO", code: "AUTHORIZATIONFAILED",
		text: "Mail server refused the login", failure: true}
)

// errRateLimited answers an attempt the authn.Guard refused before
// verifying it. Dovecot answers such attempts AUTHENTICATIONFAILED after
// its penalty delay; mox refuses the connection with "BYE too many auth
// failures". passgate says what happened with [UNAVAILABLE] (RFC 5530
// §3: a temporary failure), so that a blocked owner's client reports "try
// again later" instead of prompting for a password that is right. It tells
// an attacker nothing about the secret (none was checked) nor about the
// account: unknown accounts are counted and refused alike.
// errSessionLimit: the account has limits.max_sessions_per_user sessions
// open already (RFC 5530 LIMIT). Not a failed login: the secret was right.
var errSessionLimit = &respError{status: "NO", code: "LIMIT",
	text: "Too many sessions open for this account, close one and try again"}

var errRateLimited = &respError{status: "NO", code: "UNAVAILABLE",
	text: "Too many failed logins, try again later", failure: true}

// cmdLogin answers LOGIN (RFC 3501 §6.2.3):
//
//	login = "LOGIN" SP userid SP password
func (c *conn) cmdLogin(cmd *command) error {
	if !c.cleartextOK() {
		// Refused before the arguments are read: a synchronising literal
		// holding the password is then never sent.
		return errPrivacyRequired
	}
	if err := cmd.sp(); err != nil {
		return err
	}
	user, err := cmd.loginString()
	if err != nil {
		return err
	}
	if err := cmd.sp(); err != nil {
		return err
	}
	secret, err := cmd.loginString()
	if err != nil {
		return err
	}
	if err := cmd.end(); err != nil {
		return err
	}
	return c.login(cmd.tag, "LOGIN", user, secret)
}

// login decides a login with the Authenticator and, on success only, logs
// in to the upstream and relays the connection. It returns errDone after
// the relay, or the *respError the client gets. One Info line is logged
// per outcome; the secret is never logged.
func (c *conn) login(tag, mech, user, secret string) error {
	a := authn.Attempt{
		Username:  user,
		Secret:    secret,
		Protocol:  store.ScopeIMAP,
		RemoteIP:  c.remote.Addr(),
		Client:    c.clientID,
		Mechanism: mech,
		TLS:       proxy.TLSVersion(c.Client()),
		SessionID: c.id,
	}
	dec, err := c.srv.Auth.Verify(c.ctx, a)
	if dec.Username == "" {
		dec.Username = user
	}
	switch {
	case err != nil:
		c.logLogin(dec, mech, "auth-error", "err", err)
		return errAuthUnavailable
	case dec.Result == authn.PrimaryRefusedMFA:
		c.logLogin(dec, mech, string(dec.Result))
		return &respError{status: "NO", code: "ALERT", text: c.srv.mfaMessage(), failure: true}
	case dec.Result == authn.RateLimited:
		c.logLogin(dec, mech, string(dec.Result))
		return errRateLimited
	case dec.Result != authn.OK:
		c.logLogin(dec, mech, string(dec.Result))
		return errAuthFailed
	}

	// The only upstream dial: after an OK decision.
	l := upstream.Login{Username: dec.Username, ClientIP: c.remote, ClientID: c.clientID, SessionID: c.id}
	if c.srv.Upstream.NeedsClientSecret() {
		l.Password = secret
	}
	up, err := c.srv.Upstream.Login(c.ctx, l)
	var refused *upstream.RefusedError
	var relink *upstream.RelinkError
	switch {
	case errors.As(err, &relink):
		c.logLogin(dec, mech, "upstream-relink", "err", err)
		proxy.AuditUpstreamError(c.ctx, c.srv.Auth, a, dec)
		return &respError{status: "NO", code: "ALERT", text: c.srv.relinkMessage(), failure: true}
	case errors.As(err, &refused) && refused.Action != "":
		c.logLogin(dec, mech, "upstream-refused", "upstream_code", refused.Code, "action", refused.Action)
		proxy.AuditUpstreamError(c.ctx, c.srv.Auth, a, dec)
		return &respError{status: "NO", code: "AUTHORIZATIONFAILED", text: oneLine(proxy.UpstreamRefusedText(refused.Action)), failure: true}
	case errors.As(err, &refused):
		c.logLoginAt(slog.LevelError, dec, mech, "upstream-refused", "upstream_code", refused.Code,
			"upstream_text", refused.Text, "hint", refused.Hint())
		proxy.AuditUpstreamError(c.ctx, c.srv.Auth, a, dec)
		return errUpstreamRefused
	case err != nil:
		c.logLogin(dec, mech, "upstream-error", "err", err)
		proxy.AuditUpstreamError(c.ctx, c.srv.Auth, a, dec)
		return errUpstreamUnavailable
	}
	c.logLogin(dec, mech, string(authn.OK))
	err = c.relay(tag, dec, up)
	if err == errSessionLimit {
		proxy.AuditSessionLimit(c.ctx, c.srv.Auth, a, dec)
	}
	return err
}

// logLogin writes the one Info line of a login outcome.
func (c *conn) logLogin(dec authn.Decision, mech, result string, attrs ...any) {
	c.logLoginAt(slog.LevelInfo, dec, mech, result, attrs...)
}

// logLoginAt writes the one line of a login outcome at level.
func (c *conn) logLoginAt(level slog.Level, dec authn.Decision, mech, result string, attrs ...any) {
	attrs = append([]any{"user", proxy.LoggedUsername(dec.Username), "mechanism", mech, "result", result}, attrs...)
	if c.clientID != "" {
		attrs = append(attrs, "client", c.clientID)
	}
	if dec.AppPasswordID != "" {
		attrs = append(attrs, "app_password", dec.AppPasswordID)
	}
	c.log.Log(context.Background(), level, "imap login", attrs...)
}
