package authn

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

// Limits on what users and operators may set.
const (
	MaxAppPasswordNameLen = 64 // characters
	MinPrimaryPasswordLen = 8  // characters
)

// createAttempts bounds retries when a new app password's ID or tag is
// already used (ErrExists): practically never, but not impossible.
const createAttempts = 3

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

// CreateAccount stores a new account. An empty primaryPassword creates an
// account that can log in with app passwords only. The username may not
// hold one of MasterSeparators.
func (v *Verifier) CreateAccount(ctx context.Context, username, primaryPassword string, mfa bool) error {
	username, err := store.NormalizeUsername(username)
	if err != nil {
		return fmt.Errorf("username: %w", err)
	}
	if err := store.CheckSeparators(username, v.MasterSeparators); err != nil {
		return fmt.Errorf("username: %w", err)
	}
	a := store.Account{Username: username, MFA: mfa, Created: v.now()}
	if primaryPassword != "" {
		if err := checkPrimaryPassword(primaryPassword); err != nil {
			return err
		}
		if a.PasswordHash, err = v.hash(primaryPassword); err != nil {
			return fmt.Errorf("create account %q: %w", username, err)
		}
	}
	if err := v.Store.CreateAccount(ctx, a); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("username: an account %q already exists: %w", username, err)
		}
		return fmt.Errorf("create account %q: %w", username, err)
	}
	return nil
}

// SetPrimaryPassword replaces the primary password of an existing account.
// The store then ends live sessions that logged in with the old one. Unless
// KeepAppPasswordsOnPasswordChange is set, every app password of the
// account is then revoked (a second transaction: if it fails, the error says
// so and the new password is already in force).
func (v *Verifier) SetPrimaryPassword(ctx context.Context, username, password string) error {
	username, err := store.NormalizeUsername(username)
	if err != nil {
		return fmt.Errorf("username: %w", err)
	}
	if err := checkPrimaryPassword(password); err != nil {
		return err
	}
	h, err := v.hash(password)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", username, err)
	}
	err = v.Store.UpdateAccount(ctx, username, func(a *store.Account) error {
		a.PasswordHash = h
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("username: no account %q: %w", username, err)
	}
	if err != nil {
		return fmt.Errorf("set password of %q: %w", username, err)
	}
	if v.KeepAppPasswordsOnPasswordChange {
		return nil
	}
	if _, err := v.Store.RevokeAllAppPasswords(ctx, []string{username}); err != nil {
		return fmt.Errorf("password of %q changed, but revoking its app passwords failed: %w", username, err)
	}
	return nil
}

// checkPrimaryPassword enforces the length bounds; the error never contains
// the password.
func checkPrimaryPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPrimaryPasswordLen:
		return fmt.Errorf("password: must be at least %d characters", MinPrimaryPasswordLen)
	case len(pw) > MaxSecretLen:
		return fmt.Errorf("password: must be at most %d bytes", MaxSecretLen)
	}
	return nil
}

// AppPasswordOptions are the optional settings of a new app password.
type AppPasswordOptions struct {
	// Scopes: nil means store.AllScopes; a non-nil empty one is an error.
	Scopes []store.Scope
	// Expires: zero never expires; otherwise it must be in the future.
	Expires time.Time
	// AllowFrom: empty allows any address.
	AllowFrom []netip.Prefix
}

// CreateAppPassword generates, stores and returns a new app password for
// username with the given scopes and expiry (see AppPasswordOptions).
func (v *Verifier) CreateAppPassword(ctx context.Context, username, name string, scopes []store.Scope, expires time.Time) (NewAppPassword, error) {
	return v.CreateAppPasswordWith(ctx, username, name, AppPasswordOptions{Scopes: scopes, Expires: expires})
}

// CreateAppPasswordWith generates, stores and returns a new app password
// for username. name must be unique within the account (so that revoking by
// name is unambiguous).
func (v *Verifier) CreateAppPasswordWith(ctx context.Context, username, name string, o AppPasswordOptions) (NewAppPassword, error) {
	var np NewAppPassword
	username, err := store.NormalizeUsername(username)
	if err != nil {
		return np, fmt.Errorf("username: %w", err)
	}
	if name, err = checkAppPasswordName(name); err != nil {
		return np, err
	}
	if o.Scopes, err = checkScopes(o.Scopes); err != nil {
		return np, err
	}
	now := v.now()
	if !o.Expires.IsZero() && !o.Expires.After(now) {
		return np, fmt.Errorf("expires: %s is not in the future", o.Expires.Format(time.RFC3339))
	}
	for i, pfx := range o.AllowFrom {
		if !pfx.IsValid() {
			return np, fmt.Errorf("allow-from: entry %d is not a valid network", i+1)
		}
		o.AllowFrom[i] = pfx.Masked()
	}
	existing, err := v.Store.ListAppPasswords(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return np, fmt.Errorf("username: no account %q: %w", username, err)
	}
	if err != nil {
		return np, fmt.Errorf("create app password: %w", err)
	}
	for _, p := range existing {
		if strings.EqualFold(p.Name, name) {
			return np, fmt.Errorf("name: an app password named %q already exists: %w", p.Name, store.ErrExists)
		}
	}
	key, err := v.lookupKey(ctx)
	if err != nil {
		return np, fmt.Errorf("create app password: %w", err)
	}
	for range createAttempts {
		np, err = v.storeNewAppPassword(ctx, key, username, name, o, now)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return NewAppPassword{}, fmt.Errorf("create app password: %w", err)
	}
	return np, nil
}

// storeNewAppPassword generates one app password and stores it; ErrExists
// (wrapped) if its ID or tag collided.
func (v *Verifier) storeNewAppPassword(ctx context.Context, key []byte, username, name string, o AppPasswordOptions, now time.Time) (NewAppPassword, error) {
	display, err := GenerateAppPassword()
	if err != nil {
		return NewAppPassword{}, err
	}
	id, err := newID()
	if err != nil {
		return NewAppPassword{}, err
	}
	normalized := NormalizeSecret(display)
	verifier, err := v.hash(normalized)
	if err != nil {
		return NewAppPassword{}, err
	}
	p := store.AppPassword{
		ID:        id,
		Username:  username,
		Name:      name,
		Verifier:  verifier,
		Tag:       Tag(key, username, normalized),
		Scopes:    o.Scopes,
		Created:   now,
		Expires:   o.Expires,
		AllowFrom: o.AllowFrom,
	}
	if err := v.Store.CreateAppPassword(ctx, p); err != nil {
		return NewAppPassword{}, err
	}
	return NewAppPassword{ID: id, Name: name, Password: display, Scopes: slices.Clone(o.Scopes), Created: now,
		Expires: o.Expires, AllowFrom: slices.Clone(o.AllowFrom)}, nil
}

// checkAppPasswordName trims name and checks that it is present, printable
// and at most MaxAppPasswordNameLen characters.
func checkAppPasswordName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New("name: required")
	case !utf8.ValidString(name):
		return "", errors.New("name: not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxAppPasswordNameLen:
		return "", fmt.Errorf("name: longer than %d characters", MaxAppPasswordNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", fmt.Errorf("name: contains unprintable character %U", r)
		}
	}
	return name, nil
}

// checkScopes returns the known scopes of s, deduplicated, in the order of
// store.AllScopes; nil means all scopes.
func checkScopes(s []store.Scope) ([]store.Scope, error) {
	if s == nil {
		return slices.Clone(store.AllScopes), nil
	}
	if len(s) == 0 {
		return nil, errors.New("scopes: at least one scope is required")
	}
	for _, sc := range s {
		if !slices.Contains(store.AllScopes, sc) {
			return nil, fmt.Errorf("scopes: unknown scope %q (known: imap, smtp)", sc)
		}
	}
	var out []store.Scope
	for _, sc := range store.AllScopes {
		if slices.Contains(s, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}
