package imap

import (
	"context"
	"errors"

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
// in to the upstream (proxy.LoginFlow). It returns errLoggedIn, with
// c.loggedIn set for serve to relay, or the *respError the client gets. One
// line is logged per outcome; the secret is never logged.
func (c *conn) login(tag, mech, user, secret string) error {
	flow := proxy.LoginFlow{Auth: c.srv.Auth, Upstream: c.srv.Upstream, Sessions: c.srv.Sessions, Log: c.log,
		Ended: func(cancel context.CancelFunc) { go c.revoked(cancel) }}
	a := authn.Attempt{
		Username:  user,
		Secret:    secret,
		Protocol:  store.ScopeIMAP,
		RemoteIP:  c.remote.Addr(),
		Client:    c.clientID,
		Mechanism: mech,
		TLS:       proxy.TLSVersion(c.Client()),
		SessionID: c.id,
		Device:    proxy.NewDevice(c.clientName, c.TLSFingerprint(), c.remote.Addr()),
	}
	r, outcome, err := flow.LogIn(c.ctx, a, c.remote)
	var refused *upstream.RefusedError
	switch outcome {
	case proxy.LoginOK:
		c.loggedIn = &loggedIn{tag: tag, r: r}
		return errLoggedIn
	case proxy.LoginMFA:
		return &respError{status: "NO", code: "ALERT", text: c.srv.mfaMessage(), failure: true}
	case proxy.LoginDeviceRefused:
		return &respError{status: "NO", code: "ALERT", text: c.srv.deviceMessage(), failure: true}
	case proxy.LoginRateLimited:
		return errRateLimited
	case proxy.LoginAuthUnavailable:
		return errAuthUnavailable
	case proxy.LoginRelink:
		return &respError{status: "NO", code: "ALERT", text: c.srv.relinkMessage(), failure: true}
	case proxy.LoginUpstreamRefused:
		if errors.As(err, &refused) && refused.Action != "" {
			return &respError{status: "NO", code: "AUTHORIZATIONFAILED", text: proxy.OneLine(proxy.UpstreamRefusedText(refused.Action)), failure: true}
		}
		return errUpstreamRefused
	case proxy.LoginUpstreamUnavailable:
		return errUpstreamUnavailable
	case proxy.LoginSessionLimit:
		return errSessionLimit
	}
	return errAuthFailed
}
