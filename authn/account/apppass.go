package account

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/passgate/passgate/store"
)

// MaxAppPasswordNameLen bounds an app password's name, in characters.
const MaxAppPasswordNameLen = 64

// mintAttempts bounds the tries when a new app password's ID or tag is
// already used (store.ErrExists): practically never, but not impossible.
const mintAttempts = 3

// AppPasswordOptions are the optional settings of a new app password.
type AppPasswordOptions struct {
	// Scopes: nil means store.AllScopes; a non-nil empty one is an error.
	Scopes []store.Scope
	// Expires: zero never expires; otherwise it must be in the future.
	Expires time.Time
	// AllowFrom: empty allows any address.
	AllowFrom []netip.Prefix
}

// NewAppPassword is a freshly created app password. Password, in display
// form, is shown to the user once and is not kept anywhere.
type NewAppPassword struct {
	ID, Name  string
	Password  string
	Scopes    []store.Scope
	Created   time.Time
	Expires   time.Time      `json:",omitzero"`
	AllowFrom []netip.Prefix `json:",omitempty"`
}

// AppPasswordInfo is an app password as users and operators see it: no
// verifier, no tag.
type AppPasswordInfo struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Scopes    []store.Scope  `json:"scopes"`
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires,omitzero"`
	AllowFrom []netip.Prefix `json:"allow_from,omitempty"`
	LastUsed  store.LastUse  `json:"last_used,omitzero"`
	// Bound is the device the password is bound to (first-use binding),
	// nil before its first login.
	Bound *store.DeviceBinding `json:"bound,omitempty"`
	// Drift are the recent logins from other devices, oldest first.
	Drift []store.DriftEvent `json:"drift,omitempty"`
	// DevicePolicy is the password's own device policy, "" for the
	// installation's.
	DevicePolicy string `json:"device_policy,omitempty"`
}

func appPasswordInfo(p store.AppPassword) AppPasswordInfo {
	return AppPasswordInfo{ID: p.ID, Name: p.Name, Scopes: p.Scopes, Created: p.Created,
		Expires: p.Expires, AllowFrom: p.AllowFrom, LastUsed: p.LastUsed,
		Bound: p.Bound, Drift: p.Drift, DevicePolicy: p.DevicePolicy}
}

// CreateAppPassword generates, stores and returns a new app password for
// username. name must be unique within the account (case aside), so that
// revoking by name is unambiguous. An account that already has
// MaxAppPasswords is refused with a FieldError wrapping
// ErrTooManyAppPasswords.
func (s *Service) CreateAppPassword(ctx context.Context, who Actor, username, name string, o AppPasswordOptions) (NewAppPassword, error) {
	if err := who.check(); err != nil {
		return NewAppPassword{}, err
	}
	user, err := normUser(username)
	if err != nil {
		return NewAppPassword{}, err
	}
	p := store.AppPassword{Username: user, Created: s.now(), Expires: o.Expires}
	if p.Name, err = checkAppPasswordName(name); err != nil {
		return NewAppPassword{}, err
	}
	if p.Scopes, err = checkScopes(o.Scopes); err != nil {
		return NewAppPassword{}, err
	}
	if !p.Expires.IsZero() && !p.Expires.After(p.Created) {
		return NewAppPassword{}, fieldErr("expires", nil, "%s is not in the future", p.Expires.Format(time.RFC3339))
	}
	if p.AllowFrom, err = checkNetworks(o.AllowFrom); err != nil {
		return NewAppPassword{}, err
	}
	defer s.creating.lock(user)()
	existing, err := s.Store.ListAppPasswords(ctx, user)
	if err != nil {
		return NewAppPassword{}, storeErr("create app password", user, err)
	}
	for _, e := range existing {
		if strings.EqualFold(e.Name, p.Name) {
			return NewAppPassword{}, fieldErr("name", store.ErrExists, "an app password named %q already exists", e.Name)
		}
	}
	if s.overCap(len(existing)) {
		s.logger().InfoContext(ctx, "app password refused: cap reached", "actor", who.String(), "user", user,
			"max", s.maxAppPasswords())
		return NewAppPassword{}, capErr(user, s.maxAppPasswords())
	}
	secret, err := s.storeNew(ctx, &p)
	if err != nil {
		return NewAppPassword{}, storeErr("create app password", user, err)
	}
	if err := s.recheckCap(ctx, p); errors.Is(err, ErrTooManyAppPasswords) {
		return NewAppPassword{}, err
	} else if err != nil {
		return NewAppPassword{}, storeErr("create app password", user, err)
	}
	s.audit(ctx, who, user, ResultAppPasswordCreated, &p)
	return NewAppPassword{ID: p.ID, Name: p.Name, Password: secret, Scopes: slices.Clone(p.Scopes),
		Created: p.Created, Expires: p.Expires, AllowFrom: slices.Clone(p.AllowFrom)}, nil
}

// storeNew mints the secret of p and stores p, minting again if its ID or
// tag collided; it returns the secret in display form.
func (s *Service) storeNew(ctx context.Context, p *store.AppPassword) (string, error) {
	var err error
	for range mintAttempts {
		var minted store.AppPassword
		var secret string
		if minted, secret, err = s.Verifier.MintAppPassword(ctx, p.Username); err != nil {
			return "", err
		}
		p.ID, p.Verifier, p.Tag = minted.ID, minted.Verifier, minted.Tag
		if err = s.Store.CreateAppPassword(ctx, *p); err == nil {
			return secret, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return "", err
		}
	}
	return "", err
}

// ListAppPasswords returns the account's app passwords, oldest first.
func (s *Service) ListAppPasswords(ctx context.Context, username string) ([]AppPasswordInfo, error) {
	user, err := normUser(username)
	if err != nil {
		return nil, err
	}
	pws, err := s.Store.ListAppPasswords(ctx, user)
	if err != nil {
		return nil, storeErr("list app passwords", user, err)
	}
	out := make([]AppPasswordInfo, 0, len(pws))
	for _, p := range pws {
		out = append(out, appPasswordInfo(p))
	}
	return out, nil
}

// RevokeAppPassword deletes one app password, found by ID or else by name;
// the store's revocation event ends the sessions that use it. The error
// wraps store.ErrNotFound if there is no such app password (any more).
func (s *Service) RevokeAppPassword(ctx context.Context, who Actor, username, idOrName string) (AppPasswordInfo, error) {
	if err := who.check(); err != nil {
		return AppPasswordInfo{}, err
	}
	user, err := normUser(username)
	if err != nil {
		return AppPasswordInfo{}, err
	}
	p, err := s.findAppPassword(ctx, "revoke app password", user, idOrName)
	if err != nil {
		return AppPasswordInfo{}, err
	}
	if err := s.Store.RevokeAppPassword(ctx, user, p.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) { // revoked meanwhile
			return AppPasswordInfo{}, fieldErr("id", err, "%s has no app password with ID or name %q", user, idOrName)
		}
		return AppPasswordInfo{}, fmt.Errorf("revoke app password %s of %s: %w", p.ID, user, err)
	}
	s.audit(ctx, who, user, ResultAppPasswordRevoked, &p)
	return appPasswordInfo(p), nil
}

// RevokeAll deletes every app password of the given accounts in one store
// transaction and returns how many it deleted. If one account does not
// exist, nothing is deleted.
func (s *Service) RevokeAll(ctx context.Context, who Actor, usernames []string) (int, error) {
	if err := who.check(); err != nil {
		return 0, err
	}
	if len(usernames) == 0 {
		return 0, fieldErr("username", nil, "at least one account is required")
	}
	var users []string
	for _, u := range usernames {
		name, err := normUser(u)
		if err != nil {
			return 0, err
		}
		if _, err := s.Store.GetAccount(ctx, name); err != nil {
			return 0, fmt.Errorf("%w (nothing was revoked)", storeErr("revoke all app passwords", name, err))
		}
		if !slices.Contains(users, name) {
			users = append(users, name)
		}
	}
	n, err := s.Store.RevokeAllAppPasswords(ctx, users)
	if err != nil {
		return 0, fmt.Errorf("revoke all app passwords (nothing was revoked): %w", err)
	}
	for _, u := range users {
		s.audit(ctx, who, u, ResultAppPasswordsDeleted, nil)
	}
	return n, nil
}

// checkAppPasswordName trims name and checks that it is present, printable
// and at most MaxAppPasswordNameLen characters.
func checkAppPasswordName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fieldErr("name", nil, "required")
	case !utf8.ValidString(name):
		return "", fieldErr("name", nil, "not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxAppPasswordNameLen:
		return "", fieldErr("name", nil, "longer than %d characters", MaxAppPasswordNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", fieldErr("name", nil, "contains unprintable character %U", r)
		}
	}
	return name, nil
}

// checkScopes returns the known scopes of sc, deduplicated, in the order of
// store.AllScopes; nil means all scopes.
func checkScopes(sc []store.Scope) ([]store.Scope, error) {
	if sc == nil {
		return slices.Clone(store.AllScopes), nil
	}
	if len(sc) == 0 {
		return nil, fieldErr("scopes", nil, "at least one scope is required")
	}
	for _, x := range sc {
		if !slices.Contains(store.AllScopes, x) {
			return nil, fieldErr("scopes", nil, "unknown scope %q (known: imap, smtp)", x)
		}
	}
	var out []store.Scope
	for _, x := range store.AllScopes {
		if slices.Contains(sc, x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// checkNetworks returns the networks masked (192.0.2.7/24 is
// 192.0.2.0/24), in a new slice.
func checkNetworks(nets []netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, pfx := range nets {
		if !pfx.IsValid() {
			return nil, fieldErr("allow-from", nil, "entry %d is not a valid network", i+1)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}
