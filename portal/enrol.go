package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// Enrolment: GET /mfa/setup makes a secret and keeps it, sealed, in the KV
// under the session; the page shows it as a QR code (GET /mfa/qr.png) and as
// text; POST /mfa/setup confirms one code, stores the secret sealed in the
// account, turns MFA on and shows the recovery codes once.

const enrolPrefix = "portal/enrol/"

type enrolData struct {
	Username   string
	Secret     []string     // base32, in groups of four
	OTPAuthURL template.URL // otpauth://, which html/template would refuse
	Required   bool         // the account may do nothing else before enrolling
	Replacing  bool         // an authenticator is already enrolled
}

type recoveryData struct {
	Codes []string
	All   string // the codes, one per line, for the copy button
}

// pendingSecret returns the session's enrolment secret (base32), making
// one if there is none.
func (s *Server) pendingSecret(ctx context.Context, rc *reqCtx, create bool) (string, error) {
	key := enrolKey(rc)
	b, err := s.Store.GetKV(ctx, key)
	switch {
	case err == nil:
		plain, err := s.open("enrol", rc.acct.Username, b)
		if err == nil {
			return string(plain), nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	if !create {
		return "", store.ErrNotFound
	}
	k, err := s.newTOTPSecret(rc.acct.Username)
	if err != nil {
		return "", err
	}
	sealed, err := s.seal("enrol", rc.acct.Username, []byte(k.Secret()))
	if err != nil {
		return "", err
	}
	if err := s.Store.PutKV(ctx, key, sealed, pendingTTL); err != nil {
		return "", err
	}
	return k.Secret(), nil
}

func (s *Server) enrolPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.renderEnrol(w, r, rc, http.StatusOK, "")
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errMsg string) {
	secret, err := s.pendingSecret(r.Context(), rc, true)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	k, err := s.totpKey(rc.acct.Username, secret)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	p := s.pageFor(r, rc, "Set up your authenticator", "account")
	p.Error = errMsg
	p.Data = enrolData{Username: rc.acct.Username, Secret: chunk(secret, 4), OTPAuthURL: template.URL(k.URL()),
		Required: rc.stage == stageEnrol, Replacing: rc.acct.TOTP != nil}
	s.render(w, r, status, "enrol.html", p)
}

// enrolQR serves the pending secret's otpauth:// URL as a PNG QR code.
func (s *Server) enrolQR(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	secret, err := s.pendingSecret(r.Context(), rc, false)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	k, err := s.totpKey(rc.acct.Username, secret)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	png, err := qrcode.Encode(k.URL(), qrcode.Medium, 256)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}

// enrol confirms the pending secret with one code and stores it. Replacing
// an enrolled authenticator also takes the password and the current
// second factor (confirmReplacement).
func (s *Server) enrol(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	secret, err := s.pendingSecret(ctx, rc, false)
	if errors.Is(err, store.ErrNotFound) {
		s.renderEnrol(w, r, rc, http.StatusBadRequest, "The setup timed out. Scan this new code and try again.")
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	replacing := rc.acct.TOTP != nil
	status, msg := http.StatusBadRequest, ""
	if replacing {
		status, msg, err = s.confirmReplacement(ctx, r, rc, secret)
	} else {
		var res codeResult
		res, err = s.checkTOTP(ctx, rc.acct.Username, secret, r.PostFormValue("code"))
		if res != codeOK {
			msg = msgNewCodeWrong
		}
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if msg != "" {
		s.renderEnrol(w, r, rc, status, msg)
		return
	}
	codes, kept, err := s.Verifier.NewRecoveryCodes(ctx, rc.acct.Username)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	sealed, err := s.seal("totp", rc.acct.Username, []byte(secret))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	enrolled := &store.TOTP{SecretEnc: sealed, Enrolled: s.now(), Recovery: kept}
	err = s.Store.UpdateAccount(ctx, rc.acct.Username, func(a *store.Account) error {
		t := *enrolled
		a.TOTP = &t
		a.MFA = true
		return nil
	})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.Store.DeleteKV(ctx, enrolKey(rc))
	result := "mfa-enrolled"
	if replacing {
		result = "mfa-replaced"
	}
	s.logger().InfoContext(ctx, "portal: authenticator "+strings.TrimPrefix(result, "mfa-"), "user", rc.acct.Username)
	s.audit(ctx, store.AuditRecord{Protocol: string(ProtocolPortal), Username: rc.acct.Username,
		Remote: rc.remote, Client: userAgent(r), Result: result})
	acct := rc.acct
	acct.TOTP, acct.MFA = enrolled, true
	if rc.sess.Stage != stageFull {
		// The required enrolment was the last step of signing in.
		if _, err := s.startSession(ctx, w, r, acct, stageFull, ""); err != nil {
			s.unavailable(w, r, err)
			return
		}
		s.signedIn(ctx, rc.acct.Username, r, rc.sess.mech("password+totp-enrolment"))
	} else {
		// This session enrolled the authenticator: it has passed it.
		rc.sess.MFATag = mfaTag(acct.TOTP)
		if err := s.saveSession(ctx, rc.key, rc.sess); err != nil {
			s.unavailable(w, r, err)
			return
		}
	}
	p := page{Title: "Save your recovery codes", User: rc.acct.Username, Admin: rc.acct.Admin, Nav: "account",
		Data: recoveryData{Codes: codes, All: strings.Join(codes, "\n")}}
	s.render(w, r, http.StatusOK, "recovery.html", p)
}

// Messages of enrolment.
const (
	msgNewCodeWrong   = "That code is not right. Enter the 6-digit code your app shows now for this account."
	msgReauthRequired = "To replace your authenticator, enter your current password and a code from your current authenticator (or a recovery code)."
	msgPasswordWrong  = "Your password is not right."
	msgCurrentMissing = "Enter a code from your current authenticator, or one of your recovery codes."
	msgCurrentWrong   = "That code from your current authenticator is not right, or the recovery code was already used."
)

// confirmReplacement checks what replacing an enrolled authenticator
// takes, so that a signed-in session alone (a stolen cookie, an unlocked
// computer) cannot move the second factor to the attacker's phone: the
// primary password (through Auth, in the brute-force limits), the new
// code (against the pending secret), and the current second factor
// (through the SecondFactorGuard, in the second-factor limits). It
// returns the refusal's status and message ("" if all passed). The new
// code is matched first without using it up, so that a typo in it costs
// neither a recovery code nor the current code's step; its step is used
// up once everything passed.
func (s *Server) confirmReplacement(ctx context.Context, r *http.Request, rc *reqCtx, secret string) (int, string, error) {
	user := rc.acct.Username
	pw, current, next := r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("current_code")), r.PostFormValue("code")
	if pw == "" {
		return http.StatusUnauthorized, msgReauthRequired, nil
	}
	d, err := s.auth().Verify(ctx, authn.Attempt{Username: user, Secret: pw, Protocol: ProtocolPortal,
		RemoteIP: rc.remote.Addr(), Client: userAgent(r), Mechanism: "password-reauth"})
	switch {
	case err != nil:
		return 0, "", err
	case d.Result == authn.RateLimited:
		return http.StatusTooManyRequests, msgRateLimited, nil
	case d.AppPasswordID != "" || (d.Result != authn.OK && d.Result != authn.PrimaryRefusedMFA):
		return http.StatusUnauthorized, msgPasswordWrong, nil
	}
	step, ok, err := s.matchTOTP(secret, next)
	if err != nil || !ok {
		return http.StatusBadRequest, msgNewCodeWrong, err
	}
	if current == "" {
		return http.StatusUnauthorized, msgCurrentMissing, nil
	}
	res, _, err := s.secondFactor(ctx, r, rc, current)
	switch {
	case err != nil:
		return 0, "", err
	case res == authn.RateLimited:
		return http.StatusTooManyRequests, msgTooManyCodes, nil
	case res != authn.OK:
		return http.StatusUnauthorized, msgCurrentWrong, nil
	}
	// Used up for the new secret too (the step key is the account's).
	if _, err := s.useStep(ctx, user, step); err != nil {
		return 0, "", err
	}
	return 0, "", nil
}

// enrolKey is the KV key of the session's pending enrolment.
func enrolKey(rc *reqCtx) string { return enrolPrefix + strings.TrimPrefix(rc.key, sessionPrefix) }

// chunk splits s into pieces of n bytes.
func chunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// EnrolTOTP gives username a new authenticator without the web flow, for
// `passgate demo` and operators: it stores a fresh secret sealed with Key
// and new recovery codes, turns MFA on, and returns the secret (base32, for
// an authenticator app or `oathtool --totp -b`) and the recovery codes.
// Any previous authenticator stops working.
func (s *Server) EnrolTOTP(ctx context.Context, username string) (secret string, recovery []string, err error) {
	if err := s.check(); err != nil {
		return "", nil, err
	}
	username, err = store.NormalizeUsername(username)
	if err != nil {
		return "", nil, fmt.Errorf("enrol totp: %w", err)
	}
	k, err := s.newTOTPSecret(username)
	if err != nil {
		return "", nil, err
	}
	codes, kept, err := s.Verifier.NewRecoveryCodes(ctx, username)
	if err != nil {
		return "", nil, err
	}
	sealed, err := s.seal("totp", username, []byte(k.Secret()))
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	err = s.Store.UpdateAccount(ctx, username, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: sealed, Enrolled: now, Recovery: kept}
		a.MFA = true
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("enrol totp for %q: %w", username, err)
	}
	return k.Secret(), codes, nil
}
