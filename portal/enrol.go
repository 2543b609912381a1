package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

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

// enrol confirms the pending secret with one code and stores it.
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
	res, err := s.checkTOTP(ctx, rc.acct.Username, secret, r.PostFormValue("code"))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if res != codeOK {
		s.renderEnrol(w, r, rc, http.StatusBadRequest,
			"That code is not right. Enter the 6-digit code your app shows now for this account.")
		return
	}
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	sealed, err := s.seal("totp", rc.acct.Username, []byte(secret))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	now := s.now()
	err = s.Store.UpdateAccount(ctx, rc.acct.Username, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: sealed, Enrolled: now, RecoveryHashes: hashes}
		a.MFA = true
		return nil
	})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.Store.DeleteKV(ctx, enrolKey(rc))
	s.logger().InfoContext(ctx, "portal: authenticator enrolled", "user", rc.acct.Username)
	s.audit(ctx, store.AuditRecord{Protocol: string(ProtocolPortal), Username: rc.acct.Username,
		Remote: rc.remote, Client: userAgent(r), Result: "mfa-enrolled"})
	if rc.sess.Stage != stageFull {
		// The required enrolment was the last step of signing in.
		if _, err := s.startSession(ctx, w, r, rc.acct, stageFull, ""); err != nil {
			s.unavailable(w, r, err)
			return
		}
		s.signedIn(ctx, rc.acct.Username, r, "password+totp-enrolment")
	}
	p := page{Title: "Save your recovery codes", User: rc.acct.Username, Admin: rc.acct.Admin, Nav: "account",
		Data: recoveryData{Codes: codes, All: strings.Join(codes, "\n")}}
	s.render(w, r, http.StatusOK, "recovery.html", p)
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
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		return "", nil, err
	}
	sealed, err := s.seal("totp", username, []byte(k.Secret()))
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	err = s.Store.UpdateAccount(ctx, username, func(a *store.Account) error {
		a.TOTP = &store.TOTP{SecretEnc: sealed, Enrolled: now, RecoveryHashes: hashes}
		a.MFA = true
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("enrol totp for %q: %w", username, err)
	}
	return k.Secret(), codes, nil
}
