// Package directory is where accounts and their primary passwords come from:
// the one small interface (Directory) through which authn and the portal ask
// an operator's user directory whether an account exists, what state it is
// in (disabled, MFA required, admin, mail addresses) and whether a primary
// password is right.
//
// The kinds live in sub-packages: directory/ldap (LDAP and Active
// Directory), directory/dovecotauth (Dovecot's auth service, as Postfix
// uses it) and directory/imapdir (a login to the upstream IMAP server).
// directory/dirtest is the conformance suite every kind passes against a
// real server.
//
// Implementation notes (invariants every kind keeps):
//   - A password never appears in an error, a log line or a panic; nor does
//     anything a directory derived from it.
//   - Authenticate never reports success unless the directory verified the
//     password in this call; every failure to get an answer (network,
//     timeout, a reply the client does not understand) is ErrUnavailable,
//     never a success and never a silent ErrBadPassword.
//   - For a wrong password, an unknown user costs the same work as a known
//     one (the same number of requests to the directory, counted by
//     Requests).
//   - Account state (Disabled, MFARequired, Admin) is revealed by
//     Authenticate only after the password verified.
//   - Usernames are normalised (Names) before anything is sent, and every
//     value put into a query is escaped for that query's language.
package directory

import (
	"context"
	"errors"
	"fmt"
)

// Errors of every kind; check them with errors.Is. Kinds wrap them with the
// operation and the reason (never the password).
var (
	// ErrNotFound: the directory has no such user (Lookup), or, from
	// Authenticate of a kind that can tell, no user by that name (see
	// Directory.Authenticate).
	ErrNotFound = errors.New("no such user in the directory")
	// ErrBadPassword: the password is wrong, or the directory would not
	// say more (an unknown user, for kinds that cannot tell; an expired
	// password).
	ErrBadPassword = errors.New("wrong password")
	// ErrDisabled: the account exists and is disabled. Authenticate returns
	// it only after the password verified, or when the directory itself
	// refuses the account whatever the password (Dovecot's user_disabled).
	ErrDisabled = errors.New("account disabled in the directory")
	// ErrUnavailable: the directory could not be asked or gave no usable
	// answer (network, timeout, TLS, a malformed reply, a configuration the
	// server refuses). Callers answer it as a temporary failure.
	ErrUnavailable = errors.New("directory unavailable")
	// ErrUnsupported: this kind cannot answer the question (imapdir's
	// Lookup). It also matches errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("directory cannot answer this: %w", errors.ErrUnsupported)
)

// Entry is what a directory says about one account. The zero value of each
// field is the safe default: not disabled, no MFA demanded by the
// directory, not an admin, no addresses known.
type Entry struct {
	// Username is the account's passgate username: the login normalised by
	// Names, or the directory's canonical name for it where the kind has
	// one (a configured LDAP attribute, Dovecot's user= reply), normalised
	// the same way. It is never empty in an Entry returned with a nil
	// error.
	Username string
	// ID identifies the entry in the directory: the LDAP DN, or the
	// Dovecot userdb user name. Empty when the kind has none (imapdir).
	ID string
	// Disabled: the directory marks the account as disabled.
	Disabled bool
	// MFARequired: the directory puts the account in the group (or gives
	// it the attribute) whose members must use a second factor.
	MFARequired bool
	// Admin: the account may use the portal's administration pages.
	Admin bool
	// Addresses are the mail addresses the directory lists for the account
	// (LDAP mail, proxyAddresses), normalised; empty when it lists none, in
	// which case callers use Username.
	Addresses []string
}

// Directory is an operator's user directory, safe for concurrent use.
//
// Both methods normalise username with the kind's Names first; a name that
// cannot be a mail login (empty, '*', control characters ...) is
// ErrNotFound without any request to the directory.
type Directory interface {
	// Lookup returns the account's entry without verifying any password,
	// for the state checks of logins that passgate verified itself (app
	// passwords). Errors: ErrNotFound, ErrUnavailable, ErrUnsupported
	// (kinds that cannot look users up).
	Lookup(ctx context.Context, username string) (Entry, error)
	// Authenticate verifies the user's primary password with the
	// directory. It returns the entry with a nil error when the password
	// is right and the account is not disabled. Errors: ErrBadPassword,
	// ErrNotFound (kinds that can tell an unknown user; callers must answer
	// it exactly like ErrBadPassword), ErrDisabled (with the entry, so
	// that the caller can audit it), ErrUnavailable.
	Authenticate(ctx context.Context, username, password string) (Entry, error)
}
