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
	// LoginRateLimited: the Authenticator refused before verifying.
	LoginRateLimited Outcome = "rate-limited"
	// LoginAuthUnavailable: the Authenticator or the session check failed.
	LoginAuthUnavailable Outcome = "auth-unavailable"
	// LoginUpstreamRefused: the upstream refused our login as the user.
	LoginUpstreamRefused Outcome = "upstream-refused"
	// LoginUpstreamUnavailable: the upstream could not be used.
	LoginUpstreamUnavailable Outcome = "upstream-unavailable"
)

// LoginFlow is the login of a line-based front-end (proxy/pop3,
// proxy/sieve): the decision, then, after an OK only, the upstream login
// and the registration of the session. It logs one Info line per outcome
// ("<protocol> login") and never a secret.
type LoginFlow struct {
	Auth     Authenticator // required
	Upstream Upstream      // required
	Sessions Sessions      // nil: sessions are not registered
	Log      *slog.Logger  // required
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
// returns the session only with LoginOK.
func (f *LoginFlow) LogIn(ctx context.Context, a authn.Attempt, remote netip.AddrPort) (*Relayed, Outcome) {
	dec, err := f.Auth.Verify(ctx, a)
	if dec.Username == "" {
		dec.Username = a.Username
	}
	switch {
	case err != nil:
		f.logLogin(a, dec, "auth-error", "err", err)
		return nil, LoginAuthUnavailable
	case dec.Result == authn.PrimaryRefusedMFA:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginMFA
	case dec.Result == authn.RateLimited:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginRateLimited
	case dec.Result != authn.OK:
		f.logLogin(a, dec, string(dec.Result))
		return nil, LoginFailed
	}

	// The only upstream dial: after an OK decision.
	l := upstream.Login{Username: dec.Username, ClientIP: remote, ClientID: a.Client, SessionID: a.SessionID}
	if f.Upstream.NeedsClientSecret() {
		l.Password = a.Secret
	}
	up, err := f.Upstream.Login(ctx, l)
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &refused):
		f.logLogin(a, dec, "upstream-refused", "upstream_code", refused.Code)
		AuditUpstreamError(ctx, f.Auth, a, dec)
		return nil, LoginUpstreamRefused
	case err != nil:
		f.logLogin(a, dec, "upstream-error", "err", err)
		AuditUpstreamError(ctx, f.Auth, a, dec)
		return nil, LoginUpstreamUnavailable
	}

	r := &Relayed{Decision: dec, Up: up, Started: time.Now(), remove: func() {}}
	r.Ctx, r.cancel = context.WithCancel(ctx)
	if f.Sessions != nil {
		r.remove, err = f.Sessions.Add(ctx, sessions.Session{
			ID: a.SessionID, Protocol: a.Protocol, Remote: remote, Started: r.Started, Login: dec,
		}, r.cancel)
		switch {
		case errors.Is(err, sessions.ErrRevoked):
			f.logLogin(a, dec, "revoked-during-upstream-login", "err", err)
		case err != nil:
			f.logLogin(a, dec, "session-check-failed", "err", err)
		}
		if err != nil {
			r.cancel()
			up.Conn.Close()
			if errors.Is(err, sessions.ErrRevoked) {
				return nil, LoginFailed
			}
			return nil, LoginAuthUnavailable
		}
	}
	f.logLogin(a, dec, string(authn.OK))
	return r, LoginOK
}

func (f *LoginFlow) logLogin(a authn.Attempt, dec authn.Decision, result string, attrs ...any) {
	attrs = append([]any{"user", LoggedUsername(dec.Username), "mechanism", a.Mechanism, "result", result}, attrs...)
	if dec.AppPasswordID != "" {
		attrs = append(attrs, "app_password", dec.AppPasswordID)
	}
	f.Log.Info(string(a.Protocol)+" login", attrs...)
}
