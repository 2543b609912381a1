package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// stage is how far a session got through sign-in.
type stage int

const (
	stageNone  stage = iota
	stageTOTP        // primary password verified, TOTP code pending
	stageEnrol       // primary password verified, enrolment required first
	stageFull        // signed in
)

// session is what the KV keeps per browser, under sessionKey(token).
type session struct {
	User  string `json:"u"`
	Stage stage  `json:"s"`
	// PWTag fingerprints the account's primary password hash at sign-in:
	// a password change ends every other session.
	PWTag string `json:"p"`
	// MFATag fingerprints the authenticator the account had when this
	// session was started (after its code, or its enrolment): admin pages
	// need it to be the account's current one, so that a session signed
	// in with the password alone gains nothing when an authenticator is
	// enrolled elsewhere.
	MFATag  string    `json:"f,omitempty"`
	Expires time.Time `json:"e"`
	Flash   string    `json:"m,omitempty"`
	// Via is how the first factor was given: "" the primary password,
	// "oidc" the organisation's identity provider (oidc.go).
	Via string `json:"v,omitempty"`
	// IdPMFA: the identity provider showed the multi-factor
	// authentication the configuration requires; it stands for the
	// second factor (no TOTP step, the admin pages open).
	IdPMFA bool `json:"i,omitempty"`
}

// sessionVia is how a session's sign-in started (session.Via, IdPMFA).
type sessionVia struct {
	via    string
	idpMFA bool
}

// mech is the audit mechanism of a step of this session's sign-in:
// "password+totp" becomes "oidc+totp" after an OIDC first step.
func (sess session) mech(m string) string {
	if rest, ok := strings.CutPrefix(m, "password"); ok && sess.Via != "" {
		return sess.Via + rest
	}
	return m
}

// reqCtx is a request's signed-in state.
type reqCtx struct {
	key    string // KV key of the session
	sess   session
	acct   store.Account
	stage  stage // effective: stageEnrol if the account must enrol now
	remote netip.AddrPort
}

const sessionPrefix = "portal/session/"

func (s *Server) cookieName() string {
	if s.secureCookies() {
		return "__Host-passgate" // RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain
	}
	return "passgate"
}

// sessionKey is the KV key of a session token: its SHA-256, so that the
// store never holds a usable token.
func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return sessionPrefix + hex.EncodeToString(sum[:])
}

// pwTag fingerprints a primary password hash.
func pwTag(hash string) string {
	sum := sha256.Sum256([]byte("portal-session\x00" + hash))
	return hex.EncodeToString(sum[:8])
}

// mfaTag fingerprints an enrolled authenticator; "" for none.
func mfaTag(t *store.TOTP) string {
	if t == nil {
		return ""
	}
	sum := sha256.Sum256(append([]byte("portal-mfa\x00"+t.Enrolled.UTC().Format(time.RFC3339Nano)+"\x00"), t.SecretEnc...))
	return hex.EncodeToString(sum[:8])
}

// newToken returns 32 random bytes, base64url.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// startSession stores a new session for acct at st and sets its cookie,
// ending the browser's previous session (a new token at every stage: no
// session fixation).
// flash, if not empty, is shown on the next page.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, acct store.Account, st stage, flash string) (string, error) {
	return s.startSessionAs(ctx, w, r, acct, st, flash, sessionVia{})
}

// startSessionAs is startSession for a sign-in that started as via says.
func (s *Server) startSessionAs(ctx context.Context, w http.ResponseWriter, r *http.Request, acct store.Account, st stage, flash string, via sessionVia) (string, error) {
	s.endSession(ctx, w, r, false)
	ttl := s.sessionTTL()
	if st != stageFull {
		ttl = min(ttl, pendingTTL)
	}
	token := newToken()
	key := sessionKey(token)
	sess := session{User: acct.Username, Stage: st, PWTag: pwTag(acct.PasswordHash), MFATag: mfaTag(acct.TOTP),
		Expires: s.now().Add(ttl), Flash: flash, Via: via.via, IdPMFA: via.idpMFA}
	if err := s.saveSession(ctx, key, sess); err != nil {
		return "", err
	}
	if st == stageFull {
		s.rememberLanguage(ctx, r, acct)
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    token,
		Path:     "/",
		MaxAge:   int(ttl / time.Second),
		Secure:   s.secureCookies(),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return key, nil
}

// saveSession writes sess under key until it expires.
func (s *Server) saveSession(ctx context.Context, key string, sess session) error {
	ttl := sess.Expires.Sub(s.now())
	if ttl <= 0 {
		return s.Store.DeleteKV(ctx, key)
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	if err := s.Store.PutKV(ctx, key, b, ttl); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// endSession deletes the browser's session, if any; clear also expires
// its cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request, clear bool) {
	if c, err := r.Cookie(s.cookieName()); err == nil && c.Value != "" {
		if err := s.Store.DeleteKV(ctx, sessionKey(c.Value)); err != nil {
			s.logger().WarnContext(ctx, "portal: ending session failed", "err", err)
		}
	}
	if clear {
		http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
			Secure: s.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// errNoSession means the request has no valid session.
var errNoSession = errors.New("no session")

// loadSession returns the request's session and its account, re-checked:
// errNoSession if there is none, it expired, the account is gone or
// disabled, or its password changed since sign-in (the session is then
// deleted). Other errors are store failures.
func (s *Server) loadSession(r *http.Request) (*reqCtx, error) {
	ctx := r.Context()
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, errNoSession
	}
	rc := &reqCtx{key: sessionKey(c.Value), remote: s.remoteAddr(r)}
	b, err := s.Store.GetKV(ctx, rc.key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if err := json.Unmarshal(b, &rc.sess); err != nil || !s.now().Before(rc.sess.Expires) {
		s.Store.DeleteKV(ctx, rc.key)
		return nil, errNoSession
	}
	rc.acct, err = s.Store.GetAccount(ctx, rc.sess.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("load session: %w", err)
	case rc.acct.Disabled || pwTag(rc.acct.PasswordHash) != rc.sess.PWTag:
	default:
		ok, err := s.directoryAdmits(ctx, rc.acct)
		if err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
		if !ok {
			break
		}
		rc.stage = rc.sess.Stage
		if rc.stage == stageFull && rc.acct.MFA && rc.acct.TOTP == nil && !rc.sess.IdPMFA {
			rc.stage = stageEnrol // MFA required or reset since sign-in
		}
		return rc, nil
	}
	s.Store.DeleteKV(ctx, rc.key)
	return nil, errNoSession
}

// need wraps h so that it runs only for a session at stage want (stageEnrol
// also admits a signed-in user who enrols by choice); other requests are
// sent to the page their session needs next.
func (s *Server) need(want stage, h func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.loadSession(r)
		if errors.Is(err, errNoSession) {
			s.redirect(w, r, "/signin")
			return
		}
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		if rc.stage == want || (want == stageEnrol && rc.stage == stageFull) {
			h(w, r, rc)
			return
		}
		s.redirect(w, r, stageHome(rc.stage))
	}
}

// msgAdminSignInAgain: the session did not pass the account's current
// authenticator (signed in before it was enrolled or replaced elsewhere).
const msgAdminSignInAgain = "To use the admin pages, sign in again with a code from your authenticator."

// msgAdminNeedsMFA tells an admin without an authenticator why the admin
// pages sent them to set one up.
const msgAdminNeedsMFA = "Administrators must set up two-step verification before they can use the admin pages. " +
	"Set it up below, then open Users again."

// needAdmin is need(stageFull) for accounts with the admin role and an
// enrolled authenticator: others get 403, and an admin without one is sent
// to set it up. The admin role can end every user's mail and reset their
// MFA, so it is never used on a password alone, whatever the account's own
// MFA setting.
func (s *Server) needAdmin(h func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return s.need(stageFull, func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		if !rc.acct.Admin {
			s.renderError(w, r, rc, http.StatusForbidden, "Administrators only",
				"This page is for administrators. Your account does not have the admin role.")
			return
		}
		if rc.acct.TOTP == nil && !rc.sess.IdPMFA {
			s.logger().InfoContext(r.Context(), "portal: admin page refused: no second factor",
				"user", rc.acct.Username, "path", r.URL.Path)
			s.setFlash(r.Context(), rc, msgAdminNeedsMFA)
			s.redirect(w, r, "/mfa/setup")
			return
		}
		if rc.sess.MFATag != mfaTag(rc.acct.TOTP) && !rc.sess.IdPMFA {
			s.logger().InfoContext(r.Context(), "portal: admin page refused: session did not pass the current second factor",
				"user", rc.acct.Username, "path", r.URL.Path)
			s.endSession(r.Context(), w, r, true)
			s.render(w, r, http.StatusUnauthorized, "signin.html", page{Title: "Sign in", Error: msgAdminSignInAgain,
				Data: signinData{Username: rc.acct.Username}})
			return
		}
		h(w, r, rc)
	})
}

// stageHome is the page a session at st continues on.
func stageHome(st stage) string {
	switch st {
	case stageTOTP:
		return "/signin/code"
	case stageEnrol:
		return "/mfa/setup"
	case stageFull:
		return "/app-passwords"
	}
	return "/signin"
}

// setFlash stores a one-time message shown on the next page.
func (s *Server) setFlash(ctx context.Context, rc *reqCtx, msg string) {
	rc.sess.Flash = msg
	if err := s.saveSession(ctx, rc.key, rc.sess); err != nil {
		s.logger().WarnContext(ctx, "portal: saving message failed", "err", err)
	}
}

// popFlash returns and clears the session's message.
func (s *Server) popFlash(ctx context.Context, rc *reqCtx) string {
	msg := rc.sess.Flash
	if msg != "" {
		s.setFlash(ctx, rc, "")
	}
	return msg
}

// directoryAdmits reports whether the operator's directory still admits
// the signed-in account (not deleted or disabled there), from the state
// authn caches for the directory's cache time. An error means the
// directory cannot say: the request fails as unavailable, and the session
// stays.
func (s *Server) directoryAdmits(ctx context.Context, acct store.Account) (bool, error) {
	res, err := s.Verifier.CheckDirectory(ctx, acct)
	if err != nil {
		return false, err
	}
	if res != authn.OK {
		s.logger().InfoContext(ctx, "portal session ended: the directory refuses the account", "user", acct.Username, "result", res)
		return false, nil
	}
	return true, nil
}
