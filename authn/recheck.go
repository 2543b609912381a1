package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/store"
)

// Recheck confirms, without argon2id, that an OK decision made earlier for
// the same attempt still holds in the store: the account exists and is
// enabled, and the app password is still there (not revoked) with the same
// ID and a policy that admits a; or, for a primary-password login, the
// password is unchanged and primary logins are still allowed (the policy of
// Decision.Revalidate, which live sessions are checked with). With a
// Directory, an app-password login must also still hold there (the state
// cached for Directory.CacheTTL), and a primary-password login never holds
// (the directory decides each one). It costs the store reads of a login,
// not its hash.
//
// The Guard's cache calls it on every hit, so that a revocation whose event
// was missed (a Redis reconnect, a failover) can never be outlived by a
// cached login.
func (v *Verifier) Recheck(ctx context.Context, a Attempt, d Decision) (bool, error) {
	ok, _, err := v.recheck(ctx, a, d)
	return ok, err
}

// recheck is Recheck that also returns the app password's record it read
// (nil for a primary-password login), for the Guard's device check.
func (v *Verifier) recheck(ctx context.Context, a Attempt, d Decision) (bool, *store.AppPassword, error) {
	if d.Result != OK {
		return false, nil, nil
	}
	acct, err := v.Store.GetAccount(ctx, d.Username)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("recheck: get account: %w", err)
	}
	if acct.Disabled {
		return false, nil, nil
	}
	cur := store.SessionState{Account: &acct}
	if d.AppPasswordID == "" {
		return v.Directory == nil && d.Revalidate(cur, a.Protocol, a.RemoteIP, v.now()) == OK &&
			!v.AppPasswordsOnly && !v.mfaRequired(directory.Entry{}, acct), nil, nil
	}
	key, err := v.lookupKey(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("recheck: %w", err)
	}
	p, err := v.Store.FindAppPassword(ctx, d.Username, Tag(key, d.Username, NormalizeSecret(a.Secret)))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("recheck: find app password: %w", err)
	}
	cur.AppPassword = &p
	if d.Revalidate(cur, a.Protocol, a.RemoteIP, v.now()) != OK {
		return false, nil, nil
	}
	res, err := v.directoryAdmits(ctx, acct)
	if err != nil {
		return false, nil, fmt.Errorf("recheck: %w", err)
	}
	return res == OK, &p, nil
}
