package authn

import (
	"context"
	"fmt"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/store"
)

// StoreDirectory is the "store" directory kind: passgate's own accounts,
// primary passwords checked with argon2id, as a directory.Directory for
// what asks any directory the same questions (`passgate directory test`,
// the measurements). A Verifier without a Directory decides the logins of
// these accounts itself, with the same store reads and the same one hash
// (and the app passwords in front).
type StoreDirectory struct {
	// V supplies the store, the hash, the MFA policy and Names. Required.
	V *Verifier
}

var _ directory.Directory = StoreDirectory{}

// Lookup implements directory.Directory.
func (s StoreDirectory) Lookup(ctx context.Context, username string) (directory.Entry, error) {
	name, err := s.V.NormalizeUsername(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("store lookup: %w", err)
	}
	acct, found, err := s.V.account(ctx, name)
	switch {
	case err != nil:
		return directory.Entry{}, fmt.Errorf("store lookup: %w: %w", directory.ErrUnavailable, err)
	case !found:
		return directory.Entry{}, fmt.Errorf("store lookup: %w", directory.ErrNotFound)
	}
	return s.entry(acct), nil
}

// Authenticate implements directory.Directory: one argon2id evaluation,
// against a dummy hash for unknown users and accounts without a primary
// password.
func (s StoreDirectory) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	name, err := s.V.NormalizeUsername(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("store authenticate: %w", err)
	}
	if password == "" || len(password) > MaxSecretLen {
		return directory.Entry{}, fmt.Errorf("store authenticate: %w", directory.ErrBadPassword)
	}
	acct, found, err := s.V.account(ctx, name)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("store authenticate: %w: %w", directory.ErrUnavailable, err)
	}
	if !found || acct.PasswordHash == "" {
		if err := s.V.burn(password); err != nil {
			return directory.Entry{}, fmt.Errorf("store authenticate: %w: %w", directory.ErrUnavailable, err)
		}
		if !found {
			return directory.Entry{}, fmt.Errorf("store authenticate: %w", directory.ErrNotFound)
		}
		return directory.Entry{}, fmt.Errorf("store authenticate: %w (no primary password)", directory.ErrBadPassword)
	}
	ok, err := s.V.check(acct.PasswordHash, password)
	switch {
	case err != nil:
		return directory.Entry{}, fmt.Errorf("store authenticate: %w: %w", directory.ErrUnavailable, err)
	case !ok:
		return directory.Entry{}, fmt.Errorf("store authenticate: %w", directory.ErrBadPassword)
	case acct.Disabled:
		return s.entry(acct), fmt.Errorf("store authenticate: %w", directory.ErrDisabled)
	}
	return s.entry(acct), nil
}

// entry is what the store says about acct, in the directory's terms.
func (s StoreDirectory) entry(acct store.Account) directory.Entry {
	return directory.Entry{
		Username:    acct.Username,
		ID:          acct.Username,
		Disabled:    acct.Disabled,
		MFARequired: s.V.mfaRequired(directory.Entry{}, acct),
		Admin:       acct.Admin,
		Addresses:   append([]string{acct.Username}, acct.Aliases...),
	}
}
