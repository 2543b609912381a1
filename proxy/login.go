package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
)

// Upstream logs in to the real server as the user (upstream.POP3 and
// upstream.Sieve implement it). On success the caller owns the returned
// connection. The client's secret goes into upstream.Login only if
// NeedsClientSecret says so.
type Upstream interface {
	Login(ctx context.Context, l upstream.Login) (*upstream.Conn, error)
	NeedsClientSecret() bool
}

// Outcome is how a login ended, for the front-end's reply.
type Outcome string

// Outcomes of LoginFlow.LogIn.
const (
	LoginOK Outcome = "ok"
	// LoginFailed: bad credentials, whatever the reason (one reply for
	// all); also a credential revoked during the upstream login.
	LoginFailed Outcome = "failed"
	// LoginMFA: a primary password refused because the account uses MFA.
	LoginMFA Outcome = "mfa"
	// LoginDeviceRefused: a right app password from another device than
	// its bound one, under the block policy (authn.DeviceRefused).
	LoginDeviceRefused Outcome = "device-refused"
	// LoginRateLimited: the Authenticator refused before verifying.
	LoginRateLimited Outcome = "rate-limited"
	// LoginAuthUnavailable: the Authenticator or the session check failed.
	LoginAuthUnavailable Outcome = "auth-unavailable"
	// LoginUpstreamRefused: the upstream refused our login as the user;
	// the error LogIn returns is the *upstream.RefusedError.
	LoginUpstreamRefused Outcome = "upstream-refused"
	// LoginRelink: the user must link the mailbox again in the portal
	// (upstream.RelinkError).
	LoginRelink Outcome = "upstream-relink"
	// LoginSessionLimit: the account has as many live sessions as it may
	// (sessions.ErrLimit). Not a failed login: the secret was right.
	LoginSessionLimit Outcome = "session-limit"
	// LoginUpstreamUnavailable: the upstream could not be used.
	LoginUpstreamUnavailable Outcome = "upstream-unavailable"
)

// LoginFlow is the login of a line-based front-end (proxy/imap,
// proxy/pop3, proxy/sieve): the decision, then, after an OK only, the upstream login
// and the registration of the session. It logs one Info line per outcome
// ("<protocol> login") and never a secret.
type LoginFlow struct {
	Auth     Authenticator // required
	Upstream Upstream      // required
	Sessions Sessions      // nil: sessions are not registered
	Log      *slog.Logger  // required
	// Ended, if set, is what the registry calls to end the session
	// (revocation) instead of cancelling Relayed.Ctx at once: it must not
	// block, and must call cancel (proxy/imap says "* BYE" first).
	Ended func(cancel context.CancelFunc)
}

// Relayed is a logged-in session: write the protocol's OK, then Splice
// client and Up with Ctx (revocation cancels it), then call Done.
type Relayed struct {
	Decision authn.Decision
	Up       *upstream.Conn
	Ctx      context.Context
	Started  time.Time
	remove   func()
	cancel   context.CancelFunc
}

// Done unregisters the session.
func (r *Relayed) Done() {
	r.remove()
	r.cancel()
}

// LogIn decides a; on OK it logs in upstream as the user and registers the
// session. remote is the client's address (a.RemoteIP with its port). It
// returns the session only with LoginOK, and the upstream's error with the
// upstream outcomes (for LoginUpstreamRefused, its Action).
func (f *LoginFlow) LogIn(ctx context.Context, a authn.Attempt, remote netip.AddrPort) (*Relayed, Outcome, error) {
	defer authn.Busy()()
	dec, err := f.Auth.Verify(ctx, a)
	if dec.Username == "" {
		dec.Username = a.Username
	}
	switch {
	case err != nil:
		f.logLogin(a, dec, "auth-error", "err", err)
		return nil, LoginAuthUnavailable, nil
	case dec.Result == authn.PrimaryRefusedMFA:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginMFA, nil
	case dec.Result == authn.RateLimited:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginRateLimited, nil
	case dec.Result == authn.DeviceRefused:
		f.logLogin(a, dec, string(dec.Result), "tls_fingerprint", a.Device.TLS)
		return nil, LoginDeviceRefused, nil
	case dec.Result != authn.OK:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginFailed, nil
	}

	// The only upstream dial: after an OK decision.
	l := upstream.Login{Username: dec.Username, ClientIP: remote, ClientID: a.Client, SessionID: a.SessionID}
	if f.Upstream.NeedsClientSecret() {
		l.Password = a.Secret
	}
	up, err := f.Upstream.Login(ctx, l)
	if err != nil {
		outcome := f.upstreamFailed(a, dec, err)
		AuditUpstreamError(ctx, f.Auth, a, dec)
		return nil, outcome, err
	}
	r, outcome := f.register(ctx, a, dec, remote, up)
	return r, outcome, nil
}

// upstreamFailed logs the upstream login's error and says what it means.
// A refusal with no Action for the user is the operator's problem, logged
// at ERROR with a hint.
func (f *LoginFlow) upstreamFailed(a authn.Attempt, dec authn.Decision, err error) Outcome {
	var refused *upstream.RefusedError
	var relink *upstream.RelinkError
	switch {
	case errors.As(err, &relink):
		f.logLogin(a, dec, "upstream-relink", "err", err)
		return LoginRelink
	case errors.As(err, &refused) && refused.Action != "":
		f.logLogin(a, dec, "upstream-refused", "upstream_code", refused.Code, "action", refused.Action)
		return LoginUpstreamRefused
	case errors.As(err, &refused):
		f.logLoginAt(slog.LevelError, a, dec, "upstream-refused", "upstream_code", refused.Code,
			"upstream_text", refused.Text, "hint", refused.Hint())
		return LoginUpstreamRefused
	}
	f.logLogin(a, dec, "upstream-error", "err", err)
	return LoginUpstreamUnavailable
}

// register records the session before the client hears OK, so that
// revocation can end it. Sessions checks the credential again after
// recording it: a revocation during the upstream login refuses the login,
// an account at its session limit gets LoginSessionLimit, and a store that
// cannot tell refuses it as unavailable.
func (f *LoginFlow) register(ctx context.Context, a authn.Attempt, dec authn.Decision, remote netip.AddrPort, up *upstream.Conn) (*Relayed, Outcome) {
	r := &Relayed{Decision: dec, Up: up, Started: time.Now(), remove: func() {}}
	r.Ctx, r.cancel = context.WithCancel(ctx)
	if f.Sessions == nil {
		f.logLogin(a, dec, string(authn.OK))
		return r, LoginOK
	}
	end := r.cancel
	if f.Ended != nil {
		end = func() { f.Ended(r.cancel) }
	}
	var err error
	r.remove, err = f.Sessions.Add(ctx, sessions.Session{
		ID: a.SessionID, Protocol: a.Protocol, Remote: remote, Started: r.Started, Login: dec,
	}, end)
	if err == nil {
		f.logLogin(a, dec, string(authn.OK))
		return r, LoginOK
	}
	r.cancel()
	up.Conn.Close()
	switch {
	case errors.Is(err, sessions.ErrLimit):
		f.logLogin(a, dec, "session-limit", "err", err)
		AuditSessionLimit(ctx, f.Auth, a, dec)
		return nil, LoginSessionLimit
	case errors.Is(err, sessions.ErrRevoked):
		f.logLogin(a, dec, "revoked-during-upstream-login", "err", err)
		return nil, LoginFailed
	}
	f.logLoginAt(slog.LevelWarn, a, dec, "session-check-failed", "err", err)
	return nil, LoginAuthUnavailable
}

// logLogin writes the one Info line of a login outcome.
func (f *LoginFlow) logLogin(a authn.Attempt, dec authn.Decision, result string, attrs ...any) {
	f.logLoginAt(slog.LevelInfo, a, dec, result, attrs...)
}

// logLoginAt writes the one line of a login outcome at level.
func (f *LoginFlow) logLoginAt(level slog.Level, a authn.Attempt, dec authn.Decision, result string, attrs ...any) {
	attrs = append([]any{"user", LoggedUsername(dec.Username), "mechanism", a.Mechanism, "result", result}, attrs...)
	if a.Client != "" {
		attrs = append(attrs, "client", a.Client)
	}
	if dec.AppPasswordID != "" {
		attrs = append(attrs, "app_password", dec.AppPasswordID)
	}
	f.Log.Log(context.Background(), level, string(a.Protocol)+" login", attrs...)
}
