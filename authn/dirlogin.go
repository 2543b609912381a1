package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"golang.org/x/sync/errgroup"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/store"
)

// MFAPolicy says which accounts must use a second factor: they may not log
// in to mail with their primary password, and enrol an authenticator at
// their first portal sign-in.
type MFAPolicy string

// MFA policies.
const (
	// MFAGroup (the zero value): accounts that the directory marks
	// (directory.Entry.MFARequired: a group or an attribute), and those
	// with MFA turned on in passgate (enrolled, or required by an admin).
	// For passgate's own accounts, that is their MFA setting.
	MFAGroup MFAPolicy = "group"
	// MFAAll: every account.
	MFAAll MFAPolicy = "all"
	// MFAEnrolled: only accounts with MFA turned on in passgate; the
	// directory's marks are not used.
	MFAEnrolled MFAPolicy = "enrolled"
)

// mfaRequired applies the policy to an account and what the directory says
// about it (the zero Entry for passgate's own accounts).
func (v *Verifier) mfaRequired(e directory.Entry, a store.Account) bool {
	switch v.MFA {
	case MFAAll:
		return true
	case MFAEnrolled:
		return a.MFA
	}
	return a.MFA || e.MFARequired
}

// isMailProtocol reports whether p is a mail login (not the portal).
func isMailProtocol(p store.Scope) bool {
	return p == store.ScopeIMAP || p == store.ScopeSMTP || p == store.ScopePOP3 || p == store.ScopeSieve
}

// looksLikeAppPassword reports whether a secret, as typed, has the form
// of an app password: AppPasswordLen letters of Alphabet (any case), in
// groups of four that spaces or '-' may separate. Such a secret that
// matched none of the account's app passwords is a wrong (or revoked) app
// password, and is never sent to the directory as a primary password. A
// primary password of that form (16 lower-case letters and digits without
// l, o, 0 and 1, and no other character) cannot be used through passgate.
func looksLikeAppPassword(secret string) bool {
	n := 0
	for _, r := range strings.TrimSpace(secret) {
		switch {
		case r < unicode.MaxASCII && strings.IndexByte(Alphabet, byte(unicode.ToLower(r))) >= 0:
			if n++; n > AppPasswordLen {
				return false
			}
		case (unicode.IsSpace(r) || r == '-') && n%4 == 0:
			// between two groups
		default:
			return false
		}
	}
	return n == AppPasswordLen
}

// verifyWithDirectory decides a primary-password attempt through the
// Directory, the app-password check having found no candidate. The
// directory does the slow work (an unknown user costs it as much as a
// known one); a secret shaped like an app password costs one argon2id
// here and is never sent.
func (v *Verifier) verifyWithDirectory(ctx context.Context, a Attempt, l login) (Decision, error) {
	d := Decision{Result: BadSecret, Username: l.user}
	if looksLikeAppPassword(a.Secret) {
		return v.fail(d, a.Secret)
	}
	if ip := a.RemoteIP.Unmap(); ip.IsValid() {
		ctx = directory.WithClientIP(ctx, ip)
	}
	e, err := v.Directory.Dir.Authenticate(ctx, l.user, a.Secret)
	if e.Username != "" && (err == nil || errors.Is(err, directory.ErrDisabled)) {
		d.Username = e.Username
		v.Directory.put(e.Username, dirState{entry: e, fetched: v.Directory.now()})
	}
	switch {
	case errors.Is(err, directory.ErrDisabled):
		d.Result = Disabled
		return d, nil
	case errors.Is(err, directory.ErrNotFound):
		d.Result = UnknownUser
		return d, nil
	case errors.Is(err, directory.ErrBadPassword):
		return d, nil
	case err != nil:
		return Decision{}, fmt.Errorf("verify: %w", err)
	}
	acct, found := l.acct, l.found
	if e.Username != l.user { // the directory's canonical name
		if acct, found, err = v.account(ctx, e.Username); err != nil {
			return Decision{}, fmt.Errorf("verify: %w", err)
		}
	}
	switch {
	case found && acct.Disabled:
		d.Result = Disabled
		return d, nil
	case v.mfaRequired(e, acct) || v.AppPasswordsOnly:
		d.Result = PrimaryRefusedMFA
		if isMailProtocol(a.Protocol) && !found {
			return d, nil // an account that may not use it: not provisioned
		}
		// An existing account gets MFA turned on (its primary-password
		// sessions end: the store publishes the change).
	default:
		d.Result = OK
		d.restrict = &restriction{} // no hash: Revalidate compares ""
		d.uncached = true           // the directory decides every one
	}
	if err := v.adopt(ctx, e, acct, found); err != nil {
		return Decision{}, fmt.Errorf("verify: %w", err)
	}
	return d, nil
}

// account reads an account; found is false when it does not exist.
func (v *Verifier) account(ctx context.Context, username string) (acct store.Account, found bool, err error) {
	acct, err = v.Store.GetAccount(ctx, username)
	switch {
	case err == nil:
		return acct, true, nil
	case errors.Is(err, store.ErrNotFound):
		return store.Account{}, false, nil
	}
	return store.Account{}, false, fmt.Errorf("get account: %w", err)
}

// adopt makes the store agree with what the directory says about an
// account it vouched for: the first time, it creates the account, without
// a primary password (provisioning); after that it applies what changed
// (see apply).
func (v *Verifier) adopt(ctx context.Context, e directory.Entry, acct store.Account, found bool) error {
	if !found {
		acct = store.Account{Username: e.Username, Created: v.now()}
		v.apply(&acct, e)
		err := v.Store.CreateAccount(ctx, acct)
		if err == nil {
			v.logger().InfoContext(ctx, "account provisioned from the directory",
				"user", e.Username, "directory", v.Directory.Kind, "id", e.ID)
			return nil
		}
		if !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("provision %q: %w", e.Username, err)
		}
		// Created meanwhile by a concurrent login: update it instead.
	} else if cp := acct; !v.apply(&cp, e) {
		return nil
	}
	err := v.Store.UpdateAccount(ctx, e.Username, func(a *store.Account) error {
		v.apply(a, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("update %q from the directory: %w", e.Username, err)
	}
	return nil
}

// apply copies the directory's say about an account onto a and reports
// whether anything changed: the account is the directory's (Directory
// set, no primary password hash kept), MFA is turned on if the policy now
// requires it (never off: an admin or an enrolment may have turned it on),
// the admin flag follows Entry.Admin when the directory decides it, and
// the aliases are the entry's other addresses when it lists any.
func (v *Verifier) apply(a *store.Account, e directory.Entry) bool {
	changed := false
	set := func(cond bool, f func()) {
		if cond {
			f()
			changed = true
		}
	}
	set(a.Directory != v.Directory.Kind, func() { a.Directory = v.Directory.Kind })
	set(a.PasswordHash != "", func() { a.PasswordHash = "" })
	set(v.mfaRequired(e, *a) && !a.MFA, func() { a.MFA = true })
	set(v.Directory.Admin && a.Admin != e.Admin, func() { a.Admin = e.Admin })
	if len(e.Addresses) > 0 {
		var aliases []string
		for _, addr := range e.Addresses {
			if addr != a.Username && !slices.Contains(aliases, addr) {
				aliases = append(aliases, addr)
			}
		}
		set(!slices.Equal(a.Aliases, aliases), func() { a.Aliases = aliases })
	}
	return changed
}

// directoryAdmits checks an account whose secret passgate verified (an app
// password, a cached login, a portal session) against the directory's
// state of it: OK, UnknownUser (gone from the directory) or Disabled. An
// error means the directory could not say and no cached state was live.
// Kinds that cannot look users up admit every account.
func (v *Verifier) directoryAdmits(ctx context.Context, acct store.Account) (Result, error) {
	if v.Directory == nil {
		return OK, nil
	}
	e, err := v.Directory.state(ctx, acct.Username, false)
	switch {
	case errors.Is(err, directory.ErrUnsupported):
		return OK, nil
	case errors.Is(err, directory.ErrNotFound):
		return UnknownUser, nil
	case err != nil:
		return "", err
	case e.Disabled:
		return Disabled, nil
	}
	if cp := acct; v.apply(&cp, e) {
		if err := v.adopt(ctx, e, acct, true); err != nil {
			v.logger().WarnContext(ctx, "updating an account from the directory failed", "user", acct.Username, "err", err)
		}
	}
	return OK, nil
}

// CheckDirectory tells the portal whether a signed-in account still holds
// in the directory: OK, UnknownUser (deleted there) or Disabled, from the
// state cached for Directory.CacheTTL. An error means the directory is
// unreachable and no cached state is live. Without a Directory it is
// always OK (the store's own state is the portal's to check).
func (v *Verifier) CheckDirectory(ctx context.Context, acct store.Account) (Result, error) {
	return v.directoryAdmits(ctx, acct)
}

// maxParallelLookups bounds the Lookups of one DirectoryRefusals.
const maxParallelLookups = 8

// DirectoryRefusals asks the directory afresh about each account (the
// accounts of live sessions) and returns those it no longer admits, with
// the Result a login would get: UnknownUser (deleted there) or Disabled.
// Once the directory fails to answer, the remaining accounts are judged by
// their cached states only (each failure may take the kind's timeout); an
// account without a live cached state is left out: a directory outage
// ends no session. Without a Directory, or for kinds that cannot look
// users up, it returns nil. proxy/sessions calls it at every
// reconciliation.
func (v *Verifier) DirectoryRefusals(ctx context.Context, usernames []string) map[string]Result {
	if v.Directory == nil || len(usernames) == 0 {
		return nil
	}
	results := make([]Result, len(usernames))
	var down atomic.Bool
	var g errgroup.Group
	g.SetLimit(maxParallelLookups)
	for i, u := range usernames {
		g.Go(func() error {
			var e directory.Entry
			var err error
			if down.Load() {
				e, err = v.Directory.cachedState(u)
			} else {
				var unreachable bool
				e, err, unreachable = v.Directory.lookup(ctx, u, true)
				if unreachable && !down.Swap(true) {
					v.logger().WarnContext(ctx, "directory unavailable: live sessions judged by their cached states only")
				}
			}
			switch {
			case errors.Is(err, directory.ErrUnsupported):
			case errors.Is(err, directory.ErrNotFound):
				results[i] = UnknownUser
			case err != nil: // no answer, no live cached state: kept
			case e.Disabled:
				results[i] = Disabled
			}
			return nil
		})
	}
	g.Wait()
	var out map[string]Result
	for i, res := range results {
		if res != "" {
			if out == nil {
				out = make(map[string]Result)
			}
			out[usernames[i]] = res
		}
	}
	return out
}

// turnOnMFA turns MFA on for an account that the policy requires it of
// (MFAAll), so that the portal asks for an authenticator. A failure is
// logged: the login's decision does not depend on it.
func (v *Verifier) turnOnMFA(ctx context.Context, username string) {
	err := v.Store.UpdateAccount(ctx, username, func(a *store.Account) error {
		a.MFA = true
		return nil
	})
	if err != nil {
		v.logger().WarnContext(ctx, "turning on MFA required by the policy failed", "user", username, "err", err)
	}
}
