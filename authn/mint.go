package authn

import (
	"context"
	"fmt"

	"github.com/passgate/passgate/store"
)

// Minting credentials: the hashes and app passwords that the account
// service (authn/account) stores. Nothing here writes to the store, so that
// every change goes through that service and its audit.

// HashPassword returns the argon2id verifier (PHC string) of a new primary
// password, made with v's Params. It is one evaluation, counted in
// HashEvaluations and bounded by MaxConcurrentHashes like a login's.
func (v *Verifier) HashPassword(password string) (string, error) {
	h, err := v.hash(password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// MintAppPassword generates a new app password for username (normalised):
// secret is its display form, to show once and keep nowhere; p is the
// record to store, with ID, Username, Verifier and Tag set. The caller sets
// the name, scopes, times and networks, and stores p; if the store answers
// store.ErrExists (an ID or tag collision) it mints again.
func (v *Verifier) MintAppPassword(ctx context.Context, username string) (p store.AppPassword, secret string, err error) {
	key, err := v.lookupKey(ctx)
	if err != nil {
		return store.AppPassword{}, "", fmt.Errorf("mint app password: %w", err)
	}
	secret, err = GenerateAppPassword()
	if err != nil {
		return store.AppPassword{}, "", err
	}
	id, err := newID()
	if err != nil {
		return store.AppPassword{}, "", err
	}
	normalized := NormalizeSecret(secret)
	verifier, err := v.hash(normalized)
	if err != nil {
		return store.AppPassword{}, "", fmt.Errorf("mint app password: %w", err)
	}
	p = store.AppPassword{ID: id, Username: username, Verifier: verifier, Tag: Tag(key, username, normalized)}
	return p, secret, nil
}
