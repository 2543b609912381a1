package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy/sessions"
)

// Authenticator decides a login. authn.Guard implements it (the limits,
// the tarpit and the audit around authn.Verifier), and so does
// authn.Verifier alone.
type Authenticator interface {
	Verify(ctx context.Context, a authn.Attempt) (authn.Decision, error)
}

// upstreamAuditor is implemented by an Authenticator that audits logins
// (authn.Guard): it records that the upstream login after an OK failed.
type upstreamAuditor interface {
	AuditUpstreamError(ctx context.Context, a authn.Attempt, d authn.Decision)
}

// AuditUpstreamError tells auth, if it audits logins, that the upstream
// login after its OK decision d on a failed.
func AuditUpstreamError(ctx context.Context, auth Authenticator, a authn.Attempt, d authn.Decision) {
	if ua, ok := auth.(upstreamAuditor); ok {
		ua.AuditUpstreamError(ctx, a, d)
	}
}

// sessionLimitAuditor is implemented by an Authenticator that audits
// logins (authn.Guard): it records a login refused by the session limit.
type sessionLimitAuditor interface {
	AuditSessionLimit(ctx context.Context, a authn.Attempt, d authn.Decision)
}

// AuditSessionLimit tells auth, if it audits logins, that the login after
// its OK decision d on a was refused because the account had too many
// live sessions (sessions.ErrLimit).
func AuditSessionLimit(ctx context.Context, auth Authenticator, a authn.Attempt, d authn.Decision) {
	if sa, ok := auth.(sessionLimitAuditor); ok {
		sa.AuditSessionLimit(ctx, a, d)
	}
}

// Sessions records live relayed sessions, so that revocation ends them
// (sessions.Registry implements it). Add registers s and then checks its
// credential again; end ends the session without blocking; remove
// unregisters it. An error refuses the login: sessions.ErrLimit when the
// account has too many sessions, sessions.ErrRevoked when the credential
// was revoked meanwhile, otherwise a temporary failure.
type Sessions interface {
	Add(ctx context.Context, s sessions.Session, end func()) (remove func(), err error)
}

var (
	_ Authenticator   = (*authn.Guard)(nil)
	_ Authenticator   = (*authn.Verifier)(nil)
	_ upstreamAuditor = (*authn.Guard)(nil)

	_ sessionLimitAuditor = (*authn.Guard)(nil)
	_ Sessions            = (*sessions.Registry)(nil)
)

// ErrServerClosed is returned by a front-end's Serve and ServeTLS once
// Shutdown or Close was called, like http.ErrServerClosed.
var ErrServerClosed = errors.New("proxy: server closed")

// Wait waits for wg, or until ctx is done and then returns ctx.Err(): how a
// front-end's Shutdown waits for its connections.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxLoggedUsername bounds a username in a log line.
const maxLoggedUsername = 256

// LoggedUsername is a username as the client typed it, cut for a log line:
// a hostile client may send kilobytes.
func LoggedUsername(u string) string {
	if len(u) > maxLoggedUsername {
		return u[:maxLoggedUsername]
	}
	return u
}

// PanicText describes a panic value for the log without its data: the text
// of a runtime error (which carries none), else only the value's type,
// since a value a front-end's callee panicked with may hold a secret.
func PanicText(v any) string {
	if re, ok := v.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("%T", v)
}

// TLSVersion is the TLS version negotiated on c ("TLS 1.3"), or "" when c
// is not a TLS connection: what a front-end puts in authn.Attempt.TLS.
func TLSVersion(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		return tls.VersionName(tc.ConnectionState().Version)
	}
	return ""
}
