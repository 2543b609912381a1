package portal

import (
	"context"
	"encoding/base32"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Texts of sign-in failures. Wrong password and unknown user read the same.
const (
	msgBadCredentials = "The username or password is incorrect."
	msgRateLimited    = "Too many failed sign-ins. Wait a few minutes, then try again."
	msgDisabled       = "This account is disabled. Ask your administrator."
)

type signinData struct {
	Username  string
	SignedOut bool
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	if rc, err := s.loadSession(r); err == nil && rc.stage != stageNone {
		s.redirect(w, r, stageHome(rc.stage))
		return
	}
	s.render(w, r, http.StatusOK, "signin.html", page{Title: "Sign in",
		Data: signinData{SignedOut: r.URL.Query().Has("signed-out")}})
}

// signin checks the primary password through Auth (the same policy and
// brute-force limits as mail logins). A correct password of an MFA account
// is what mail logins refuse as PrimaryRefusedMFA: here it leads on to the
// code. App passwords never sign in.
func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	user, secret := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	remote := s.remoteAddr(r)
	fail := func(status int, msg string) {
		s.render(w, r, status, "signin.html", page{Title: "Sign in", Error: msg, Data: signinData{Username: user}})
	}
	d, err := s.auth().Verify(ctx, authn.Attempt{Username: user, Secret: secret, Protocol: ProtocolPortal,
		RemoteIP: remote.Addr(), Client: userAgent(r), Mechanism: "password"})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	correct := d.AppPasswordID == "" && (d.Result == authn.OK || d.Result == authn.PrimaryRefusedMFA)
	if !correct {
		// Auth audits the attempt (authn.Guard does).
		s.logger().InfoContext(ctx, "portal sign-in refused", "user", d.Username, "remote", remote.Addr().String(), "result", d.Result)
		switch d.Result {
		case authn.RateLimited:
			fail(http.StatusTooManyRequests, msgRateLimited)
		case authn.Disabled:
			fail(http.StatusForbidden, msgDisabled)
		default:
			fail(http.StatusUnauthorized, msgBadCredentials)
		}
		return
	}
	acct, err := s.Store.GetAccount(ctx, d.Username)
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		fail(http.StatusUnauthorized, msgBadCredentials)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	st := stageFull
	switch {
	case acct.TOTP != nil:
		st = stageTOTP
	case acct.MFA:
		st = stageEnrol
	}
	if _, err := s.startSession(ctx, w, r, acct, st, ""); err != nil {
		s.unavailable(w, r, err)
		return
	}
	if st == stageFull {
		s.logger().InfoContext(ctx, "portal sign-in", "user", acct.Username, "remote", remote.Addr().String(), "mechanism", "password")
	}
	s.redirect(w, r, stageHome(st))
}

// signedIn records a sign-in completed by enrolling a second factor (Auth
// already recorded the password step).
func (s *Server) signedIn(ctx context.Context, user string, r *http.Request, mech string) {
	remote := s.remoteAddr(r)
	s.logger().InfoContext(ctx, "portal sign-in", "user", user, "remote", remote.Addr().String(), "mechanism", mech)
	s.audit(ctx, store.AuditRecord{Protocol: string(ProtocolPortal), Username: user, Remote: remote,
		Client: userAgent(r), Mechanism: mech, Result: string(authn.OK)})
}

type codeData struct{ Username string }

func (s *Server) codePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.render(w, r, http.StatusOK, "code.html", page{Title: "Enter your code", Data: codeData{rc.acct.Username}})
}

// msgTooManyCodes answers a second factor refused by the limits.
const msgTooManyCodes = "Too many wrong codes. Wait a while, then sign in again."

// code takes the second factor: a 6-digit TOTP code, or a recovery code
// (used up), within the brute-force limits (secondFactor). When the limits
// refuse it, the pending sign-in ends.
func (s *Server) code(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	if rc.acct.TOTP == nil { // reset since the password step
		s.endSession(ctx, w, r, true)
		s.redirect(w, r, "/signin")
		return
	}
	res, f, err := s.secondFactor(ctx, r, rc, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	switch res {
	case authn.OK:
	case authn.RateLimited:
		s.endSession(ctx, w, r, true)
		s.render(w, r, http.StatusTooManyRequests, "signin.html", page{Title: "Sign in",
			Error: msgTooManyCodes, Data: signinData{Username: rc.acct.Username}})
		return
	default:
		s.render(w, r, http.StatusUnauthorized, "code.html", page{Title: "Enter your code", Error: f.msg,
			Data: codeData{rc.acct.Username}})
		return
	}
	var flash string
	if f.mech == mechRecovery {
		flash = recoveryLeftText(f.left)
	}
	if _, err := s.startSession(ctx, w, r, rc.acct, stageFull, flash); err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.logger().InfoContext(ctx, "portal sign-in", "user", rc.acct.Username, "remote", rc.remote.Addr().String(), "mechanism", f.mech)
	s.redirect(w, r, "/app-passwords")
}

func recoveryLeftText(left int) string {
	switch left {
	case 0:
		return "You used your last recovery code. Set up your authenticator again on the Account page to get new ones."
	case 1:
		return "You used a recovery code; 1 is left."
	}
	return "You used a recovery code; " + strconv.Itoa(left) + " are left."
}

// Mechanisms of second factors, in the audit.
const (
	mechTOTP     = "password+totp"
	mechRecovery = "password+recovery-code"
)

// factor is what a second-factor check found, for the reply.
type factor struct {
	mech string // mechTOTP or mechRecovery
	msg  string // why it was refused, for the user
	left int    // recovery codes left after one was used
}

// secondFactor checks code, a TOTP code (6 digits) or a recovery code, of
// rc's account through the SecondFactorGuard: the attempt counts in the
// same limits as passwords and in the account's second-factor lockout
// before it is checked, and is audited ("ok", "bad-code" or
// "rate-limited").
func (s *Server) secondFactor(ctx context.Context, r *http.Request, rc *reqCtx, code string) (authn.Result, factor, error) {
	user, t := rc.acct.Username, rc.acct.TOTP
	var f factor
	var check func(context.Context) (bool, error)
	if isDigits(strings.Join(strings.Fields(code), "")) {
		f.mech = mechTOTP
		check = func(ctx context.Context) (bool, error) {
			secret, err := s.open("totp", user, t.SecretEnc)
			if err != nil {
				return false, err
			}
			res, err := s.checkTOTP(ctx, user, string(secret), code)
			switch {
			case err != nil:
				return false, err
			case res == codeReplayed:
				f.msg = "That code was already used. Wait for your app to show the next one."
			case res == codeWrong:
				f.msg = "That code is not right. Check the time on your phone and try again."
			}
			return res == codeOK, nil
		}
	} else {
		f.mech = mechRecovery
		check = func(ctx context.Context) (bool, error) {
			ok, left, err := s.Verifier.UseRecoveryCode(ctx, user, code)
			if !ok {
				f.msg = "That recovery code is not right, or it was already used."
			}
			f.left = left
			return ok, err
		}
	}
	res, err := s.secondFactors().SecondFactor(ctx, authn.Attempt{Username: user, Protocol: ProtocolPortal,
		RemoteIP: rc.remote.Addr(), Client: userAgent(r), Mechanism: rc.sess.mech(f.mech)}, check)
	return res, f, err
}

// signout ends the session; it is a POST so that another site cannot sign
// the user out.
func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	s.endSession(r.Context(), w, r, true)
	s.redirect(w, r, "/signin?signed-out")
}

// audit appends rec to the audit log, stamped with the time; failures are
// logged, not fatal (the slog line is the full log).
func (s *Server) audit(ctx context.Context, rec store.AuditRecord) {
	if rec.Username == "" {
		return
	}
	rec.Time = s.now()
	if err := s.Store.AppendAudit(ctx, rec); err != nil {
		s.logger().WarnContext(ctx, "portal: audit append failed", "user", rec.Username, "err", err)
	}
}

// userAgent names the browser for the audit record, briefly: "Chrome 126
// on Windows". The full User-Agent string is noise to the people who read
// "recent sign-ins".
func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chrome/", "Chrome"}, {"CriOS/", "Chrome"}, {"Version/", "Safari"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			v := ua[i+len(b.token):]
			if j := strings.IndexAny(v, ". "); j >= 0 {
				v = v[:j]
			}
			browser = b.name + " " + v
			break
		}
	}
	if browser == "" {
		browser, _, _ = strings.Cut(ua, " ")
	}
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			browser += " on " + o.name
			break
		}
	}
	if len(browser) > 64 {
		browser = browser[:64]
	}
	return strings.ToValidUTF8(browser, "")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
