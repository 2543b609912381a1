package portal

import (
	"net/http"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// recentN is how many audit records the account page shows.
const recentN = 20

type accountData struct {
	Username string
	MFA      bool
	TOTP     *store.TOTP
	// Activity are the account's recent sign-ins and changes, Failures
	// its recent failed attempts, each up to recentN: kept apart so that
	// failures, which anyone can cause, never hide the user's own.
	Activity, Failures []store.AuditRecord
	// RevokesOnPasswordChange warns that a new password deletes every app
	// password.
	RevokesOnPasswordChange bool
	MinPassword             int
	// Directory: the primary password is the directory's, not passgate's
	// to change.
	Directory bool
	// Languages are the notification languages, the account's selected.
	Languages []languageChoice
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.renderAccount(w, r, rc, http.StatusOK, "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errMsg string) {
	recs, err := s.Store.RecentAudit(r.Context(), rc.acct.Username, store.AuditMax)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	ok, failed := splitActivity(recs, recentN)
	p := s.pageFor(r, rc, "Account", "account")
	p.Error = errMsg
	p.Data = accountData{Username: rc.acct.Username, MFA: rc.acct.MFA, TOTP: rc.acct.TOTP, Activity: ok, Failures: failed,
		RevokesOnPasswordChange: !s.Verifier.KeepAppPasswordsOnPasswordChange, MinPassword: account.MinPrimaryPasswordLen,
		Directory: rc.acct.Directory != "", Languages: languageChoices(rc.acct.Language)}
	s.render(w, r, status, "account.html", p)
}

// splitActivity returns the newest n sign-ins and changes and the newest n
// failures of recs (newest first).
func splitActivity(recs []store.AuditRecord, n int) (ok, failed []store.AuditRecord) {
	for _, r := range recs {
		switch {
		case r.Failure() && len(failed) < n:
			failed = append(failed, r)
		case !r.Failure() && len(ok) < n:
			ok = append(ok, r)
		}
	}
	return ok, failed
}

// msgDirectoryPassword answers a password change of a directory account.
const msgDirectoryPassword = "Your password is your organisation's: change it where you always do, not here."

// changePassword checks the current password through Auth (brute-force
// limits apply) and sets the new one. Every other session of the account
// ends (its password fingerprint no longer matches); this one continues.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	if rc.acct.Directory != "" {
		// passgate keeps no primary password for directory accounts.
		s.renderAccount(w, r, rc, http.StatusConflict, msgDirectoryPassword)
		return
	}
	cur, next, confirm := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	if next != confirm {
		s.renderAccount(w, r, rc, http.StatusUnprocessableEntity, "The new password and its confirmation differ.")
		return
	}
	d, err := s.auth().Verify(ctx, authn.Attempt{Username: rc.acct.Username, Secret: cur, Protocol: ProtocolPortal,
		RemoteIP: rc.remote.Addr(), Client: userAgent(r), Mechanism: "password-change"})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if d.AppPasswordID != "" || (d.Result != authn.OK && d.Result != authn.PrimaryRefusedMFA) {
		msg := "Your current password is not right."
		if d.Result == authn.RateLimited {
			msg = msgRateLimited
		}
		s.renderAccount(w, r, rc, http.StatusUnauthorized, msg)
		return
	}
	if err := s.accounts().SetPassword(ctx, s.actor(r, rc), rc.acct.Username, next); err != nil {
		if msg, ok := userError(err); ok {
			s.renderAccount(w, r, rc, http.StatusUnprocessableEntity, msg)
			return
		}
		s.unavailable(w, r, err)
		return
	}
	acct, err := s.Store.GetAccount(ctx, rc.acct.Username)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	rc.sess.PWTag = pwTag(acct.PasswordHash)
	msg := "Your password was changed. Your other sign-ins to this portal were ended."
	if !s.Verifier.KeepAppPasswordsOnPasswordChange {
		msg += " All your app passwords were deleted: create a new one for each app."
	}
	s.setFlash(ctx, rc, msg) // also saves the new fingerprint
	s.redirect(w, r, "/account")
}
