package portal

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// Admin pages: the user list (search, select, act), one user's page, and
// the actions, each confirmed on a page of its own and made through the
// account service with the admin as actor ("portal:<admin>").

const (
	// adminListMax bounds the rows of the user list; a search narrows it.
	adminListMax = 200
	// lastSignInScan is how many audit records are searched for the last
	// successful sign-in.
	lastSignInScan = 50
)

// adminAction is one thing an admin can do to selected accounts.
type adminAction struct {
	Name, Label, Confirm string
}

var adminActions = []adminAction{
	{"delete-app-passwords", "Delete all app passwords",
		"Every app password of these users will be deleted. Their mail apps are signed out at once and need new app passwords."},
	{"require-mfa", "Require MFA",
		"These users must set up an authenticator at their next portal sign-in, and can no longer use their primary password in mail apps."},
	{"reset-mfa", "Reset MFA",
		"The authenticator and recovery codes of these users will be removed. Users who must use MFA set up a new authenticator at their next sign-in."},
	{"disable", "Disable accounts",
		"These users can no longer sign in anywhere; their open mail sessions and portal sign-ins end at once."},
	{"enable", "Enable accounts", "These users can sign in again."},
	{actionUnlink, "Unlink mailboxes",
		"passgate forgets its access to the mailboxes of these users: their mail apps cannot sign in until each user links the mailbox again on the Mailbox page."},
}

// actionUnlink needs the mailbox link (Server.Link).
const actionUnlink = "unlink-mailbox"

// actions are the admin actions this portal offers.
func (s *Server) actions() []adminAction {
	if s.Link != nil {
		return adminActions
	}
	return slices.DeleteFunc(slices.Clone(adminActions), func(a adminAction) bool { return a.Name == actionUnlink })
}

func (s *Server) findAction(name string) (adminAction, bool) {
	acts := s.actions()
	i := slices.IndexFunc(acts, func(a adminAction) bool { return a.Name == name })
	if i < 0 {
		return adminAction{}, false
	}
	return acts[i], true
}

type userRow struct {
	store.Account
	AppPasswords int
	LastSignIn   store.AuditRecord // zero: none recorded
}

type adminUsersData struct {
	Query   string
	Rows    []userRow
	Total   int
	More    bool // more matches than shown
	Actions []adminAction
}

// lastSignIn returns the newest successful login of recs (newest first).
func lastSignIn(recs []store.AuditRecord) store.AuditRecord {
	for _, r := range recs {
		if r.Result == "ok" && r.Protocol != "admin" {
			return r
		}
	}
	return store.AuditRecord{}
}

func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	q := normalizeQuery(r.URL.Query().Get("q"))
	all, err := s.Store.ListAccounts(ctx)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	d := adminUsersData{Query: q, Actions: s.actions()}
	for _, a := range all {
		if q != "" && !strings.Contains(a.Username, q) {
			continue
		}
		d.Total++
		if len(d.Rows) == adminListMax {
			d.More = true
			continue
		}
		row, err := s.userRow(r, a)
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		d.Rows = append(d.Rows, row)
	}
	p := s.pageFor(r, rc, "Users", "admin")
	p.Data = d
	s.render(w, r, http.StatusOK, "admin_users.html", p)
}

func (s *Server) userRow(r *http.Request, a store.Account) (userRow, error) {
	row := userRow{Account: a}
	apps, err := s.Store.ListAppPasswords(r.Context(), a.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return row, err
	}
	row.AppPasswords = len(apps)
	recs, err := s.Store.RecentAudit(r.Context(), a.Username, lastSignInScan)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return row, err
	}
	row.LastSignIn = lastSignIn(recs)
	return row, nil
}

type adminUserData struct {
	Row      userRow
	Apps     []appPasswordRow
	Activity []store.AuditRecord
	Actions  []adminAction
}

func (s *Server) adminUser(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	name, err := store.NormalizeUsername(r.PathValue("user"))
	var a store.Account
	if err == nil {
		a, err = s.Store.GetAccount(ctx, name)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || name == "" {
			s.renderError(w, r, rc, http.StatusNotFound, "No such user", "There is no account with that name.")
			return
		}
		s.unavailable(w, r, err)
		return
	}
	row, err := s.userRow(r, a)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	apps, err := s.Store.ListAppPasswords(ctx, a.Username)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	recs, err := s.Store.RecentAudit(ctx, a.Username, recentN)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	p := s.pageFor(r, rc, a.Username, "admin")
	p.Data = adminUserData{Row: row, Apps: s.appPasswordRows(apps), Activity: recs, Actions: s.actions()}
	s.render(w, r, http.StatusOK, "admin_user.html", p)
}

type adminConfirmData struct {
	Action adminAction
	Users  []string
	Back   string
}

// adminAction confirms (without confirm=yes) or performs an action on the
// selected users, then returns to the page it came from.
func (s *Server) adminAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	back := adminBack(r.PostFormValue("back"))
	act, ok := s.findAction(r.PostFormValue("action"))
	if !ok {
		s.setFlash(ctx, rc, "Choose an action.")
		s.redirect(w, r, back)
		return
	}
	var users []string
	for _, u := range r.PostForm["users"] {
		n, err := store.NormalizeUsername(u)
		if err == nil && !slices.Contains(users, n) {
			users = append(users, n)
		}
	}
	if len(users) == 0 {
		s.setFlash(ctx, rc, "Select at least one user.")
		s.redirect(w, r, back)
		return
	}
	if act.Name == "disable" && slices.Contains(users, rc.acct.Username) {
		s.setFlash(ctx, rc, "You cannot disable your own account.")
		s.redirect(w, r, back)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p := s.pageFor(r, rc, act.Label, "admin")
		p.Data = adminConfirmData{Action: act, Users: users, Back: back}
		s.render(w, r, http.StatusOK, "admin_confirm.html", p)
		return
	}
	msg, err := s.doAdminAction(r, rc, act, users)
	if errors.Is(err, store.ErrNotFound) {
		s.setFlash(ctx, rc, "One of the selected users no longer exists; nothing was changed for it.")
		s.redirect(w, r, back)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.setFlash(ctx, rc, msg)
	s.redirect(w, r, back)
}

// maxRefusalsShown bounds the refusals one action's message lists.
const maxRefusalsShown = 3

// doAdminAction performs act through the account service (which audits
// each change) and returns the message for the admin. A user the service
// refuses (a *account.FieldError other than a missing account, such as
// resetting an authenticator never enrolled) is left unchanged and named
// in the message; the others are done. It stops at the first user it
// otherwise fails for.
func (s *Server) doAdminAction(r *http.Request, rc *reqCtx, act adminAction, users []string) (string, error) {
	ctx, svc, who := r.Context(), s.accounts(), s.actor(r, rc)
	if act.Name == "delete-app-passwords" {
		n, err := svc.RevokeAll(ctx, who, users)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Deleted %d app passwords of %d users.", n, len(users)), nil
	}
	var refused []string
	for _, u := range users {
		var err error
		switch act.Name {
		case "require-mfa":
			err = svc.SetMFA(ctx, who, u, true)
		case "reset-mfa":
			err = svc.ResetMFA(ctx, who, u)
		case "disable", "enable":
			err = svc.SetDisabled(ctx, who, u, act.Name == "disable")
		case actionUnlink:
			if err = svc.UnlinkMailbox(ctx, who, u); errors.Is(err, account.ErrNotLinked) {
				err = nil // not linked: nothing to undo
			}
		default:
			err = fmt.Errorf("admin action %q: not implemented", act.Name)
		}
		var fe *account.FieldError
		if errors.As(err, &fe) && !errors.Is(err, store.ErrNotFound) {
			refused = append(refused, fe.Msg+".")
			continue
		}
		if err != nil {
			return "", err
		}
	}
	return actionMessage(act, len(users)-len(refused), refused), nil
}

// actionMessage tells the admin for how many users act was done and why
// it was not for the others (at most maxRefusalsShown reasons).
func actionMessage(act adminAction, done int, refused []string) string {
	var parts []string
	if done > 0 || len(refused) == 0 {
		parts = append(parts, fmt.Sprintf("%s: done for %d users.", act.Label, done))
	}
	if n := len(refused); n > maxRefusalsShown {
		refused = append(refused[:maxRefusalsShown:maxRefusalsShown], fmt.Sprintf("%d more users were refused likewise.", n-maxRefusalsShown))
	}
	return strings.Join(append(parts, refused...), " ")
}

// actor is the signed-in user as the account service records them.
func (s *Server) actor(r *http.Request, rc *reqCtx) account.Actor {
	return account.Actor{Door: account.DoorPortal, Name: rc.acct.Username, Remote: rc.remote, Client: userAgent(r)}
}
