package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// ops are the management operations of the CLI. localOps runs them on an
// open store; remoteOps sends them to a running server's control socket.
type ops interface {
	AddUser(ctx context.Context, a AddUserArgs) error
	SetMFA(ctx context.Context, username string, on bool) error
	SetDisabled(ctx context.Context, username string, disabled bool) error
	SetAdmin(ctx context.Context, username string, admin bool) error
	SetPassword(ctx context.Context, username, password string) error
	// EditAliases adds (add) or removes (!add) one sender alias and
	// returns the account's aliases after the change.
	EditAliases(ctx context.Context, username, alias string, add bool) ([]string, error)
	Aliases(ctx context.Context, username string) ([]string, error)
	// Activity returns up to n recent login attempts, newest first.
	Activity(ctx context.Context, username string, n int) ([]store.AuditRecord, error)
	ListUsers(ctx context.Context) ([]UserInfo, error)
	CreateAppPassword(ctx context.Context, a CreateArgs) (authn.NewAppPassword, error)
	ListAppPasswords(ctx context.Context, username string) ([]AppPasswordInfo, error)
	RevokeAppPassword(ctx context.Context, username, idOrName string) (AppPasswordInfo, error)
	RevokeAll(ctx context.Context, usernames []string) (int, error)
}

// AddUserArgs creates an account; Password "" means no primary password.
type AddUserArgs struct {
	Username string
	Password string
	MFA      bool
}

// CreateArgs creates an app password; Expires zero means never, no
// AllowFrom means any address.
type CreateArgs struct {
	Username  string
	Name      string
	Scopes    []store.Scope
	Expires   time.Time
	AllowFrom []netip.Prefix
}

// UserInfo is an account as the CLI shows it: no hashes.
type UserInfo struct {
	Username     string    `json:"username"`
	MFA          bool      `json:"mfa"`
	Disabled     bool      `json:"disabled"`
	Admin        bool      `json:"admin"`
	Aliases      []string  `json:"aliases,omitempty"`
	HasPassword  bool      `json:"has_primary_password"`
	AppPasswords int       `json:"app_passwords"`
	Created      time.Time `json:"created"`
}

// AppPasswordInfo is an app password as the CLI shows it: no verifier, no
// tag.
type AppPasswordInfo struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Scopes    []store.Scope  `json:"scopes"`
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires,omitzero"`
	AllowFrom []netip.Prefix `json:"allow_from,omitempty"`
	LastUsed  store.LastUse  `json:"last_used,omitzero"`
}

func appPasswordInfo(p store.AppPassword) AppPasswordInfo {
	return AppPasswordInfo{ID: p.ID, Name: p.Name, Scopes: p.Scopes, Created: p.Created,
		Expires: p.Expires, AllowFrom: p.AllowFrom, LastUsed: p.LastUsed}
}

// localOps runs the operations directly on a store.
type localOps struct {
	st backend
	v  *authn.Verifier
}

var _ ops = (*localOps)(nil)

func normUser(u string) (string, error) {
	n, err := store.NormalizeUsername(u)
	if err != nil {
		return "", fmt.Errorf("USER: %w", err)
	}
	return n, nil
}

func (o *localOps) AddUser(ctx context.Context, a AddUserArgs) error {
	return o.v.CreateAccount(ctx, a.Username, a.Password, a.MFA)
}

func (o *localOps) update(ctx context.Context, username string, fn func(*store.Account)) error {
	u, err := normUser(username)
	if err != nil {
		return err
	}
	err = o.st.UpdateAccount(ctx, u, func(a *store.Account) error { fn(a); return nil })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s: no such user", u)
	}
	return err
}

func (o *localOps) SetMFA(ctx context.Context, username string, on bool) error {
	return o.update(ctx, username, func(a *store.Account) { a.MFA = on })
}

func (o *localOps) SetDisabled(ctx context.Context, username string, disabled bool) error {
	return o.update(ctx, username, func(a *store.Account) { a.Disabled = disabled })
}

func (o *localOps) SetAdmin(ctx context.Context, username string, admin bool) error {
	return o.update(ctx, username, func(a *store.Account) { a.Admin = admin })
}

func (o *localOps) SetPassword(ctx context.Context, username, password string) error {
	return o.v.SetPrimaryPassword(ctx, username, password)
}

func (o *localOps) EditAliases(ctx context.Context, username, alias string, add bool) ([]string, error) {
	al, err := store.NormalizeUsername(alias)
	if err != nil || !strings.Contains(al, "@") {
		return nil, fmt.Errorf("ADDRESS: %q is not a mail address", alias)
	}
	var out []string
	var missing bool
	err = o.update(ctx, username, func(a *store.Account) {
		i := slices.Index(a.Aliases, al)
		switch {
		case add && i < 0 && al != a.Username:
			a.Aliases = append(a.Aliases, al)
			slices.Sort(a.Aliases)
		case !add && i >= 0:
			a.Aliases = slices.Delete(a.Aliases, i, i+1)
		case !add:
			missing = true
		}
		out = slices.Clone(a.Aliases)
	})
	if err == nil && missing {
		return nil, fmt.Errorf("ADDRESS: %s is not an alias of %s", al, username)
	}
	return out, err
}

func (o *localOps) Aliases(ctx context.Context, username string) ([]string, error) {
	u, err := normUser(username)
	if err != nil {
		return nil, err
	}
	a, err := o.st.GetAccount(ctx, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("user %s: no such user", u)
	}
	return a.Aliases, err
}

func (o *localOps) Activity(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	u, err := normUser(username)
	if err != nil {
		return nil, err
	}
	recs, err := o.st.RecentAudit(ctx, u, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("user %s: no such user", u)
	}
	return recs, err
}

func (o *localOps) ListUsers(ctx context.Context) ([]UserInfo, error) {
	accts, err := o.st.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]UserInfo, 0, len(accts))
	for _, a := range accts {
		pws, err := o.st.ListAppPasswords(ctx, a.Username)
		if err != nil {
			return nil, fmt.Errorf("list app passwords of %s: %w", a.Username, err)
		}
		out = append(out, UserInfo{Username: a.Username, MFA: a.MFA, Disabled: a.Disabled, Admin: a.Admin, Aliases: a.Aliases,
			HasPassword: a.PasswordHash != "", AppPasswords: len(pws), Created: a.Created})
	}
	return out, nil
}

func (o *localOps) CreateAppPassword(ctx context.Context, a CreateArgs) (authn.NewAppPassword, error) {
	return o.v.CreateAppPasswordWith(ctx, a.Username, a.Name,
		authn.AppPasswordOptions{Scopes: a.Scopes, Expires: a.Expires, AllowFrom: a.AllowFrom})
}

func (o *localOps) ListAppPasswords(ctx context.Context, username string) ([]AppPasswordInfo, error) {
	u, err := normUser(username)
	if err != nil {
		return nil, err
	}
	pws, err := o.st.ListAppPasswords(ctx, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("user %s: no such user", u)
	} else if err != nil {
		return nil, fmt.Errorf("list app passwords: %w", err)
	}
	out := make([]AppPasswordInfo, 0, len(pws))
	for _, p := range pws {
		out = append(out, appPasswordInfo(p))
	}
	return out, nil
}

// RevokeAppPassword revokes by ID, or by name (names are unique per account).
func (o *localOps) RevokeAppPassword(ctx context.Context, username, idOrName string) (AppPasswordInfo, error) {
	pws, err := o.ListAppPasswords(ctx, username)
	if err != nil {
		return AppPasswordInfo{}, err
	}
	u, _ := normUser(username)
	for _, p := range pws {
		if p.ID == idOrName || strings.EqualFold(p.Name, idOrName) {
			if err := o.st.RevokeAppPassword(ctx, u, p.ID); err != nil {
				return AppPasswordInfo{}, fmt.Errorf("revoke app password %s: %w", p.ID, err)
			}
			return p, nil
		}
	}
	return AppPasswordInfo{}, fmt.Errorf("ID: user %s has no app password with ID or name %q", u, idOrName)
}

func (o *localOps) RevokeAll(ctx context.Context, usernames []string) (int, error) {
	us := make([]string, 0, len(usernames))
	for _, name := range usernames {
		u, err := normUser(name)
		if err != nil {
			return 0, err
		}
		if _, err := o.st.GetAccount(ctx, u); errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("user %s: no such user (nothing was revoked)", u)
		} else if err != nil {
			return 0, fmt.Errorf("revoke-all: %w", err)
		}
		us = append(us, u)
	}
	n, err := o.st.RevokeAllAppPasswords(ctx, us)
	if err != nil {
		return 0, fmt.Errorf("revoke-all (nothing was revoked): %w", err)
	}
	return n, nil
}
