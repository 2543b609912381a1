package portal

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

type appPasswordRow struct {
	store.AppPassword
	Expired bool
	// RetireAt is when the password is removed unless used (zero: never);
	// RetireSoon is set in the warning period before.
	RetireAt   time.Time
	RetireSoon bool
	// Stale marks it for administrators (account.Retirement.Stale).
	Stale bool
	deviceFacts
}

// appPasswordRows are list as the app-password tables show them.
func (s *Server) appPasswordRows(list []store.AppPassword) []appPasswordRow {
	now, ret := s.now(), s.accounts().Retire
	rows := make([]appPasswordRow, 0, len(list))
	for _, p := range list {
		rows = append(rows, appPasswordRow{AppPassword: p, Expired: !p.Expires.IsZero() && !p.Expires.After(now),
			RetireAt: ret.At(p), RetireSoon: ret.Warned(p, now), Stale: ret.Stale(p, now), deviceFacts: devicesOf(p)})
	}
	return rows
}

// createForm is the create form's state, kept when it is shown again.
type createForm struct {
	Name    string
	IMAP    bool
	SMTP    bool
	POP3    bool
	Sieve   bool
	Expires string // YYYY-MM-DD or ""
	MinDate string // tomorrow, for the date input
}

type appPasswordsData struct {
	Rows []appPasswordRow
	Form createForm
	// RevokesOnPasswordChange warns that changing the primary password
	// deletes every app password.
	RevokesOnPasswordChange bool
}

type createdData struct {
	Username string
	Name     string
	Password string // display form, groups separated by spaces
	Compact  string // without spaces, what the copy button copies
	Scopes   []store.Scope
	Expires  time.Time
	Mail     MailSettings
	// ProfileToken downloads the .mobileconfig once (POSTed, never in a URL).
	ProfileToken string
}

func (s *Server) appPasswords(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.renderAppPasswords(w, r, rc, http.StatusOK, "", createForm{IMAP: true, SMTP: true})
}

func (s *Server) renderAppPasswords(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errMsg string, f createForm) {
	list, err := s.Store.ListAppPasswords(r.Context(), rc.acct.Username)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	now := s.now()
	rows := s.appPasswordRows(list)
	f.MinDate = now.UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	p := s.pageFor(r, rc, "App passwords", "app-passwords")
	p.Error = errMsg
	p.Data = appPasswordsData{Rows: rows, Form: f, RevokesOnPasswordChange: !s.Verifier.KeepAppPasswordsOnPasswordChange}
	s.render(w, r, status, "apppasswords.html", p)
}

// createAppPassword creates one and shows it once, with the settings to
// type into a mail client and a one-time .mobileconfig download.
func (s *Server) createAppPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	f := createForm{Name: strings.TrimSpace(r.PostFormValue("name")), Expires: strings.TrimSpace(r.PostFormValue("expires"))}
	scopes := []store.Scope{}
	for _, v := range r.PostForm["scope"] {
		sc := store.Scope(v)
		if slices.Contains(store.AllScopes, sc) && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	f.IMAP, f.SMTP = slices.Contains(scopes, store.ScopeIMAP), slices.Contains(scopes, store.ScopeSMTP)
	f.POP3, f.Sieve = slices.Contains(scopes, store.ScopePOP3), slices.Contains(scopes, store.ScopeSieve)
	invalid := func(msg string) { s.renderAppPasswords(w, r, rc, http.StatusUnprocessableEntity, msg, f) }
	switch {
	case f.Name == "":
		invalid("Give the app password a name, such as the app or device that will use it.")
		return
	case len(scopes) == 0:
		invalid("Choose at least one of IMAP, SMTP, POP3 and ManageSieve.")
		return
	}
	var expires time.Time
	if f.Expires != "" {
		day, err := time.Parse(time.DateOnly, f.Expires)
		if err != nil {
			invalid("The expiry date is not a date.")
			return
		}
		expires = day.AddDate(0, 0, 1) // valid through the chosen day (UTC)
		if !expires.After(s.now().Add(time.Hour)) {
			invalid("The expiry date must be in the future.")
			return
		}
	}
	np, err := s.accounts().CreateAppPassword(ctx, s.actor(r, rc), rc.acct.Username, f.Name,
		account.AppPasswordOptions{Scopes: scopes, Expires: expires})
	if errors.Is(err, account.ErrTooManyAppPasswords) {
		invalid(fmt.Sprintf("You already have %d app passwords, the most allowed. Revoke one you no longer use, then create the new one.",
			account.AppPasswordCap(s.accounts().MaxAppPasswords)))
		return
	}
	if err != nil {
		if msg, ok := userError(err); ok {
			invalid(msg)
			return
		}
		s.unavailable(w, r, err)
		return
	}
	token, err := s.newProfileToken(ctx, rc.acct.Username, np)
	if err != nil {
		// The password exists; only the download is lost.
		s.logger().WarnContext(ctx, "portal: profile token failed", "user", rc.acct.Username, "err", err)
	}
	p := s.pageFor(r, rc, "Your new app password", "app-passwords")
	p.Data = createdData{Username: rc.acct.Username, Name: np.Name, Password: np.Password,
		Compact: authn.NormalizeSecret(np.Password), Scopes: np.Scopes, Expires: np.Expires,
		Mail: s.mail(), ProfileToken: token}
	s.render(w, r, http.StatusOK, "created.html", p)
}

// userError returns the message for a user of a request the account
// service refused (its errors name the field and carry no secret).
func userError(err error) (string, bool) {
	var fe *account.FieldError
	if !errors.As(err, &fe) || fe.Msg == "" {
		return "", false
	}
	if fe.Field == "name" && errors.Is(err, store.ErrExists) {
		return "You already have an app password with that name. Choose another name.", true
	}
	return strings.ToUpper(fe.Msg[:1]) + fe.Msg[1:] + ".", true
}

type revokeData struct{ P store.AppPassword }

func (s *Server) findAppPassword(r *http.Request, rc *reqCtx) (store.AppPassword, bool, error) {
	list, err := s.Store.ListAppPasswords(r.Context(), rc.acct.Username)
	if err != nil {
		return store.AppPassword{}, false, err
	}
	id := r.PathValue("id")
	for _, p := range list {
		if p.ID == id {
			return p, true, nil
		}
	}
	return store.AppPassword{}, false, nil
}

// appPasswordOrBack returns the signed-in account's app password the
// request names; when there is none (revoked meanwhile) or the store
// fails, it has answered (back to the list with a note, or the
// unavailable page) and ok is false.
func (s *Server) appPasswordOrBack(w http.ResponseWriter, r *http.Request, rc *reqCtx) (p store.AppPassword, ok bool) {
	p, ok, err := s.findAppPassword(r, rc)
	if err != nil {
		s.unavailable(w, r, err)
		return p, false
	}
	if !ok {
		s.setFlash(r.Context(), rc, "That app password no longer exists.")
		s.redirect(w, r, "/app-passwords")
	}
	return p, ok
}

// revokePage asks for confirmation.
func (s *Server) revokePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p, ok := s.appPasswordOrBack(w, r, rc)
	if !ok {
		return
	}
	pg := s.pageFor(r, rc, "Revoke app password", "app-passwords")
	pg.Data = revokeData{P: p}
	s.render(w, r, http.StatusOK, "revoke.html", pg)
}

// revoke deletes one app password, by its ID; the store's revocation event
// ends the sessions that use it on every instance.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	p, ok, err := s.findAppPassword(r, rc)
	if err == nil && ok {
		_, err = s.accounts().RevokeAppPassword(ctx, s.actor(r, rc), rc.acct.Username, p.ID)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !ok):
		s.setFlash(ctx, rc, "That app password was already revoked.")
	case err != nil:
		s.unavailable(w, r, err)
		return
	default:
		s.setFlash(ctx, rc, "Revoked “"+p.Name+"”. Apps that used it were signed out and can no longer sign in with it.")
	}
	s.redirect(w, r, "/app-passwords")
}
