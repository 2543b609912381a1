package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// MinPrimaryPasswordLen is the shortest primary password users and
// operators may set, in characters (the longest is authn.MaxSecretLen
// bytes, what a login accepts).
const MinPrimaryPasswordLen = 8

// NewUser is an account to create. Password "" creates an account that
// logs in with app passwords only.
type NewUser struct {
	Username string
	Password string
	MFA      bool
}

// UserInfo is an account as operators see it: no hashes, no TOTP secret.
type UserInfo struct {
	Username     string    `json:"username"`
	MFA          bool      `json:"mfa"`
	Disabled     bool      `json:"disabled"`
	Admin        bool      `json:"admin"`
	Aliases      []string  `json:"aliases,omitempty"`
	HasPassword  bool      `json:"has_primary_password"`
	AppPasswords int       `json:"app_passwords"`
	Created      time.Time `json:"created"`
	// Directory is the directory kind that provisioned the account, ""
	// for passgate's own.
	Directory string `json:"directory,omitempty"`
}

// CreateUser stores a new account.
func (s *Service) CreateUser(ctx context.Context, who Actor, u NewUser) error {
	if err := who.check(); err != nil {
		return err
	}
	name, err := normUser(u.Username)
	if err != nil {
		return err
	}
	if err := store.CheckSeparators(name, s.Verifier.MasterSeparators); err != nil {
		return fieldErr("username", err, "%v", err)
	}
	a := store.Account{Username: name, MFA: u.MFA, Created: s.now()}
	if u.Password != "" {
		if err := checkPrimaryPassword(u.Password); err != nil {
			return err
		}
		if a.PasswordHash, err = s.Verifier.HashPassword(u.Password); err != nil {
			return fmt.Errorf("create account %s: %w", name, err)
		}
	}
	if err := s.Store.CreateAccount(ctx, a); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fieldErr("username", err, "an account %q already exists", name)
		}
		return fmt.Errorf("create account %s: %w", name, err)
	}
	s.audit(ctx, who, name, ResultUserCreated, nil)
	return nil
}

// SetMFA requires MFA (only app passwords log in to mail) or lifts it.
func (s *Service) SetMFA(ctx context.Context, who Actor, username string, on bool) error {
	result := ResultMFAOff
	if on {
		result = ResultMFAOn
	}
	return s.update(ctx, who, username, result, func(a *store.Account) error { a.MFA = on; return nil })
}

// ResetMFA removes the account's authenticator and recovery codes; an
// account that must use MFA enrols again at its next portal sign-in. An
// account with no authenticator enrolled is refused with a "username"
// FieldError and left unchanged, unaudited and untold: nothing was reset,
// so neither the audit trail nor its owner may hear that it was.
func (s *Service) ResetMFA(ctx context.Context, who Actor, username string) error {
	return s.update(ctx, who, username, ResultMFAReset, func(a *store.Account) error {
		if a.TOTP == nil {
			return fieldErr("username", nil, "%s has no authenticator enrolled: nothing to reset", a.Username)
		}
		a.TOTP = nil
		return nil
	})
}

// SetDisabled disables the account (every session ends) or enables it.
func (s *Service) SetDisabled(ctx context.Context, who Actor, username string, disabled bool) error {
	result := ResultEnabled
	if disabled {
		result = ResultDisabled
	}
	return s.update(ctx, who, username, result, func(a *store.Account) error { a.Disabled = disabled; return nil })
}

// SetAdmin gives or takes the right to use the portal's admin pages.
func (s *Service) SetAdmin(ctx context.Context, who Actor, username string, admin bool) error {
	result := ResultAdminOff
	if admin {
		result = ResultAdminOn
	}
	return s.update(ctx, who, username, result, func(a *store.Account) error { a.Admin = admin; return nil })
}

// SetPassword replaces the primary password. The store then ends live
// sessions that logged in with the old one. Unless the Verifier's
// KeepAppPasswordsOnPasswordChange is set, every app password of the
// account is revoked too (a second transaction: if it fails, the error
// says so and the new password is already in force).
func (s *Service) SetPassword(ctx context.Context, who Actor, username, password string) error {
	if err := who.check(); err != nil {
		return err
	}
	name, err := normUser(username)
	if err != nil {
		return err
	}
	if err := checkPrimaryPassword(password); err != nil {
		return err
	}
	h, err := s.Verifier.HashPassword(password)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	err = s.update(ctx, who, name, ResultPasswordChanged, func(a *store.Account) error {
		if a.Directory != "" {
			// passgate keeps no primary password for the directory's accounts.
			return fieldErr("password", nil, "the primary password of %s is its directory's (%s): change it there", name, a.Directory)
		}
		a.PasswordHash = h
		return nil
	})
	if err != nil || s.Verifier.KeepAppPasswordsOnPasswordChange {
		return err
	}
	if _, err := s.Store.RevokeAllAppPasswords(ctx, []string{name}); err != nil {
		return fmt.Errorf("password of %s changed, but revoking its app passwords failed: %w", name, err)
	}
	return nil
}

// AddAlias lets the account send as alias too (SMTP MAIL FROM) and returns
// its aliases after the change. Adding an alias it has is no error.
func (s *Service) AddAlias(ctx context.Context, who Actor, username, alias string) ([]string, error) {
	al, err := normAlias(alias)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.update(ctx, who, username, ResultAliasAdded, func(a *store.Account) error {
		if !slices.Contains(a.Aliases, al) && al != a.Username {
			a.Aliases = append(slices.Clone(a.Aliases), al)
			slices.Sort(a.Aliases)
		}
		out = slices.Clone(a.Aliases)
		return nil
	})
	return out, err
}

// RemoveAlias takes an alias away and returns the aliases after the
// change; an error wrapping store.ErrNotFound if the account lacks it.
func (s *Service) RemoveAlias(ctx context.Context, who Actor, username, alias string) ([]string, error) {
	al, err := normAlias(alias)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.update(ctx, who, username, ResultAliasRemoved, func(a *store.Account) error {
		i := slices.Index(a.Aliases, al)
		if i < 0 {
			return fieldErr("alias", store.ErrNotFound, "%s is not an alias of %s", al, a.Username)
		}
		a.Aliases = slices.Delete(slices.Clone(a.Aliases), i, i+1)
		out = slices.Clone(a.Aliases)
		return nil
	})
	return out, err
}

// Aliases returns the account's aliases.
func (s *Service) Aliases(ctx context.Context, username string) ([]string, error) {
	a, err := s.get(ctx, username)
	return a.Aliases, err
}

// ListUsers returns every account, ordered by username.
func (s *Service) ListUsers(ctx context.Context) ([]UserInfo, error) {
	accts, err := s.Store.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]UserInfo, 0, len(accts))
	for _, a := range accts {
		pws, err := s.Store.ListAppPasswords(ctx, a.Username)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			return nil, fmt.Errorf("list app passwords of %s: %w", a.Username, err)
		}
		out = append(out, UserInfo{Username: a.Username, MFA: a.MFA, Disabled: a.Disabled, Admin: a.Admin,
			Aliases: a.Aliases, HasPassword: a.PasswordHash != "", AppPasswords: len(pws), Created: a.Created,
			Directory: a.Directory})
	}
	return out, nil
}

// Activity returns up to n (1 to store.AuditKeep) recent audit records of
// the account, newest first: logins and changes.
func (s *Service) Activity(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	name, err := normUser(username)
	if err != nil {
		return nil, err
	}
	n = min(max(n, 1), store.AuditKeep)
	recs, err := s.Store.RecentAudit(ctx, name, n)
	if err != nil {
		return nil, storeErr("activity", name, err)
	}
	return recs, nil
}

// get returns the account of username.
func (s *Service) get(ctx context.Context, username string) (store.Account, error) {
	name, err := normUser(username)
	if err != nil {
		return store.Account{}, err
	}
	a, err := s.Store.GetAccount(ctx, name)
	if err != nil {
		return store.Account{}, storeErr("read account", name, err)
	}
	return a, nil
}

// update applies fn to the account in one store transaction and audits
// result once it is stored. A *FieldError from fn aborts it unchanged.
func (s *Service) update(ctx context.Context, who Actor, username, result string, fn func(*store.Account) error) error {
	if err := who.check(); err != nil {
		return err
	}
	name, err := normUser(username)
	if err != nil {
		return err
	}
	err = s.Store.UpdateAccount(ctx, name, fn)
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	if err != nil {
		return storeErr(result, name, err)
	}
	s.audit(ctx, who, name, result, nil)
	return nil
}

// checkPrimaryPassword enforces the length bounds; the error never
// contains the password.
func checkPrimaryPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPrimaryPasswordLen:
		return fieldErr("password", nil, "must be at least %d characters", MinPrimaryPasswordLen)
	case len(pw) > authn.MaxSecretLen:
		return fieldErr("password", nil, "must be at most %d bytes", authn.MaxSecretLen)
	}
	return nil
}

// normAlias normalises a sender alias: a mail address.
func normAlias(alias string) (string, error) {
	al, err := store.NormalizeUsername(alias)
	if err != nil || !strings.Contains(al, "@") {
		return "", fieldErr("alias", nil, "%q is not a mail address", alias)
	}
	return al, nil
}
