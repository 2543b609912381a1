// Package store defines what passgate keeps (accounts, app passwords, audit
// records, counters, short-lived values, revocation events) and the
// interfaces every backend implements: store/bolt (the embedded default,
// with store/memcount for its counters) and store/redis (shared by several
// instances). store/storetest is the conformance suite every backend must
// pass; store/migrate copies one store into another.
package store

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Errors returned by every backend; check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrUnavailable wraps backend failures (I/O, network) that a client
	// should see as a temporary error.
	ErrUnavailable = errors.New("store unavailable")
)

// Scope names a protocol an app password may be used with.
type Scope string

// Scopes known to passgate.
const (
	ScopeIMAP Scope = "imap"
	ScopeSMTP Scope = "smtp"
	ScopePOP3 Scope = "pop3"
	// ScopeSieve is ManageSieve (RFC 5804): mail filters.
	ScopeSieve Scope = "sieve"
)

// AllScopes is the default scope set of a new app password.
var AllScopes = []Scope{ScopeIMAP, ScopeSMTP, ScopePOP3, ScopeSieve}

// Account is one mail user known to passgate.
type Account struct {
	// Username is normalised (see NormalizeUsername) and is the key.
	Username string `json:"username"`
	// PasswordHash is the argon2id PHC string of the primary password, or
	// empty when the account has none (it then logs in with app passwords
	// only).
	PasswordHash string    `json:"password_hash,omitempty"`
	MFA          bool      `json:"mfa"`
	Disabled     bool      `json:"disabled"`
	Created      time.Time `json:"created"`
	// Admin accounts may use the portal's administration pages.
	Admin bool `json:"admin,omitempty"`
	// Aliases are the addresses besides Username the account may send as
	// (SMTP MAIL FROM), normalised like usernames.
	Aliases []string `json:"aliases,omitempty"`
	// TOTP is the enrolled second factor, nil until enrolment completes.
	TOTP *TOTP `json:"totp,omitempty"`
	// Directory names the directory kind ("ldap", "dovecot", "imap") that
	// vouched for the account and provisioned it; empty for passgate's
	// own accounts. A directory account has no PasswordHash: its primary
	// password stays in the directory.
	Directory string `json:"directory,omitempty"`
	// OAuth is the user's linked mailbox (OAuth 2.0 delegated access to
	// the upstream), nil if the user never linked one (oauthlink.go).
	OAuth *OAuthLink `json:"oauth,omitempty"`
	// Language is the language the owner reads notifications in (a tag
	// such as "fr"), set by the portal; empty: the installation's.
	Language string `json:"language,omitempty"`
}

// TOTP is an account's enrolled authenticator (RFC 6238).
type TOTP struct {
	// SecretEnc is the TOTP secret sealed with the portal's key (never the
	// plain secret).
	SecretEnc []byte    `json:"secret_enc"`
	Enrolled  time.Time `json:"enrolled"`
	// Recovery are the unused one-time recovery codes; a used code is
	// removed.
	Recovery []RecoveryCode `json:"recovery,omitempty"`
	// RecoveryHashes are argon2id PHC strings of unused recovery codes of
	// enrolments made before codes had lookup tags (each costs a hash to
	// check); new enrolments leave it empty.
	RecoveryHashes []string `json:"recovery_hashes,omitempty"`
}

// RecoveryLeft is how many unused recovery codes t has.
func (t *TOTP) RecoveryLeft() int { return len(t.Recovery) + len(t.RecoveryHashes) }

// RecoveryCode is one recovery code as the store keeps it: like an app
// password, a keyed lookup tag that finds it without a slow hash, and its
// argon2id verifier.
type RecoveryCode struct {
	Tag  []byte `json:"tag"`
	Hash string `json:"hash"`
}

// LastUse records the most recent successful login with an app password.
// The zero value means never used.
type LastUse struct {
	Time     time.Time  `json:"time"`
	IP       netip.Addr `json:"ip"`
	Protocol string     `json:"protocol,omitempty"`
	Client   string     `json:"client,omitempty"` // IMAP ID name/version, if sent
}

// Device is what an app password was used from, as first-use binding
// compares it (issue 16): the client's own name, a fingerprint of its TLS
// ClientHello and its network. Two Devices are the same device when every
// field that both have is equal.
type Device struct {
	// Client is the IMAP ID name (not its version: an upgrade is not a
	// new device) or the SMTP EHLO name, "" if the client sent none (an
	// address literal is no name).
	Client string `json:"client,omitempty"`
	// TLS is the fingerprint of the TLS ClientHello (cipher suites,
	// extensions, curves: the JA4 idea), "" for a connection without TLS.
	TLS string `json:"tls,omitempty"`
	// Network is the /24 (IPv4) or /48 (IPv6) the client came from.
	Network netip.Prefix `json:"network,omitzero"`
}

// AppPassword is one app password of an account. The secret itself is never
// stored: only its argon2id verifier and a keyed lookup tag.
type AppPassword struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	// Verifier is the argon2id PHC string of the normalised secret.
	Verifier string `json:"verifier"`
	// Tag is the keyed lookup tag (authn computes it from the username and
	// normalised secret) that finds this app password without a slow hash.
	// It is unique per account.
	Tag     []byte    `json:"tag"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	// Expires is zero for an app password that never expires.
	Expires time.Time `json:"expires,omitzero"`
	// AllowFrom is empty for "any address".
	AllowFrom []netip.Prefix `json:"allow_from,omitempty"`
	LastUsed  LastUse        `json:"last_used,omitzero"`
	// Bound is the device of first-use binding (device.go), nil until
	// the first successful login (or for records older than binding).
	Bound *DeviceBinding `json:"bound,omitempty"`
	// Drift are the recent logins from other devices, oldest first, at
	// most MaxDriftEvents.
	Drift []DriftEvent `json:"drift,omitempty"`
	// DevicePolicy overrides the installation's device policy for this
	// password: one of the DevicePolicy constants, "" for the default.
	DevicePolicy string `json:"device_policy,omitempty"`
}

// HasScope reports whether p may be used with scope s.
func (p *AppPassword) HasScope(s Scope) bool { return slices.Contains(p.Scopes, s) }

// EventKind says what changed.
type EventKind string

// Event kinds.
const (
	// EventAppPasswordRevoked: one app password (AppPasswordID) is gone.
	EventAppPasswordRevoked EventKind = "apppass-revoked"
	// EventAccountChanged: the account was disabled, had MFA turned on or
	// its primary password changed; sessions that logged in with the
	// primary password or, if disabled, any session must end.
	EventAccountChanged EventKind = "account-changed"
	// EventsLost is no change: a backend delivers it when events may have
	// been missed since the previous one it delivered (a full subscriber
	// buffer, a reconnect, a failover). A subscriber must then check what
	// it keeps against the store (CheckSessions). It has no Username.
	EventsLost EventKind = "events-lost"
)

// Event is published by a backend after a change that must end live
// sessions has been committed.
type Event struct {
	Kind          EventKind `json:"kind"`
	Username      string    `json:"username"`
	AppPasswordID string    `json:"app_password_id,omitempty"`
	// PrimaryOnly, on EventAccountChanged, says that only sessions that
	// logged in with the primary password must end (MFA turned on, primary
	// password changed); false means every session of the account (disabled).
	PrimaryOnly bool `json:"primary_only,omitempty"`
}

// SessionRef names the credential a live session logged in with.
type SessionRef struct {
	Username      string
	AppPasswordID string // "" for the primary password
}

// SessionState is what the store holds now for one SessionRef.
type SessionState struct {
	// Account is nil when the account does not exist.
	Account *Account
	// AppPassword is nil when it does not exist (revoked), when the
	// account does not, or when the ref has no AppPasswordID.
	AppPassword *AppPassword
}

// Counters are expiring counters shared by every instance that uses the
// same backend (rate limits, brute-force penalties).
type Counters interface {
	// Incr adds n to the counter named key and returns the new value. A
	// new counter expires ttl after its first increment (a fixed window);
	// later increments do not extend it. ttl must be positive.
	Incr(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	// Get returns the counter's value, 0 if it does not exist or expired.
	Get(ctx context.Context, key string) (int64, error)
	// GetMany returns the values of keys, in order, in one round trip (a
	// login checks several limits before it may cost a hash).
	GetMany(ctx context.Context, keys []string) ([]int64, error)
	// Delete removes the counter (e.g. after a successful login).
	Delete(ctx context.Context, key string) error
	// IncrMany applies incrs in order, in one round trip, and returns the
	// counters' new values. Each change is atomic on its own counter (n
	// concurrent increments of one counter return n distinct values), so
	// a caller that increments first and then decides on the values it
	// got (a login reserving its attempt before any hash) cannot be raced
	// past a limit; the set as a whole need not be atomic.
	IncrMany(ctx context.Context, incrs []Incr) ([]int64, error)
}

// Incr is one change of a Counters.IncrMany call.
type Incr struct {
	Key string
	// N is added to the counter. A positive N creates a missing counter,
	// which then expires TTL after (a fixed window, as Counters.Incr). 0
	// only reads the counter. A negative N gives back an earlier
	// increment: it never creates a counter and never takes one below
	// zero (the window may have ended, or the counter been reset, since).
	N int64
	// TTL is the window of a counter that a positive N creates; it must
	// then be positive.
	TTL time.Duration
	// Reset removes the counter before N is applied: with a positive N it
	// starts a new window, with 0 the counter is just deleted.
	Reset bool
}

// Store is what passgate needs from a backend. All methods are safe for
// concurrent use. Every change is atomic: it is either stored whole or not at
// all. Usernames passed in are already normalised.
type Store interface {
	// CreateAccount stores a new account; ErrExists if the username is taken.
	CreateAccount(ctx context.Context, a Account) error
	// GetAccount returns ErrNotFound for an unknown username.
	GetAccount(ctx context.Context, username string) (Account, error)
	// UpdateAccount applies fn to the stored account inside one transaction
	// and stores the result; an error from fn aborts without change. fn may
	// run more than once (optimistic backends retry) and must not call the
	// Store. It publishes EventAccountChanged when the account became
	// disabled (PrimaryOnly false), or MFA was turned on or PasswordHash
	// changed (PrimaryOnly true); re-enabling or turning MFA off ends nothing.
	UpdateAccount(ctx context.Context, username string, fn func(*Account) error) error
	// ListAccounts returns all accounts ordered by username.
	ListAccounts(ctx context.Context) ([]Account, error)

	// CreateAppPassword stores p (ID, Username, Tag set by the caller, none
	// empty);
	// ErrNotFound if the account does not exist, ErrExists if the ID or the
	// tag is already used in that account.
	CreateAppPassword(ctx context.Context, p AppPassword) error
	// ListAppPasswords returns the account's app passwords ordered by
	// creation time, then ID; ErrNotFound if the account does not exist.
	ListAppPasswords(ctx context.Context, username string) ([]AppPassword, error)
	// FindAppPassword returns the app password of username whose Tag equals
	// tag, or ErrNotFound.
	FindAppPassword(ctx context.Context, username string, tag []byte) (AppPassword, error)
	// RevokeAppPassword deletes one app password and publishes
	// EventAppPasswordRevoked; ErrNotFound if there is no such password.
	RevokeAppPassword(ctx context.Context, username, id string) error
	// RevokeAllAppPasswords deletes every app password of every listed
	// account in one transaction and returns how many were deleted. An
	// unknown username fails the whole call with ErrNotFound (and deletes
	// nothing). One EventAppPasswordRevoked is published per deleted password.
	RevokeAllAppPasswords(ctx context.Context, usernames []string) (int, error)
	// TouchAppPassword records a successful use; ErrNotFound if the password
	// is gone (revoked meanwhile).
	TouchAppPassword(ctx context.Context, username, id string, use LastUse) error
	// UpdateAppPassword applies fn to app password id of username inside
	// one transaction and stores and returns the result; ErrNotFound if
	// there is no such password. An error from fn aborts without change.
	// fn may run more than once (optimistic backends retry) and must not
	// call the Store. fn may change Name, Scopes, Expires, AllowFrom and
	// the device fields (Bound, Drift, DevicePolicy); changing ID,
	// Username, Verifier, Tag or LastUsed (TouchAppPassword's) aborts.
	// Two concurrent updates never lose each other's change (first-use
	// binding relies on it: one of two first logins binds, the other
	// sees the binding).
	UpdateAppPassword(ctx context.Context, username, id string, fn func(*AppPassword) error) (AppPassword, error)

	// LookupKey returns the installation's random 32-byte key for lookup
	// tags, creating it on first use (atomically: every caller gets the same
	// key).
	LookupKey(ctx context.Context) ([]byte, error)

	// Subscribe delivers every Event published after the call until ctx is
	// done; the channel is then closed. Events are never lost silently: a
	// reader that falls more than the buffer behind (backends document the
	// size), or a subscription that broke and was made again, gets an
	// EventsLost after the last event it received (see SendEvent).
	Subscribe(ctx context.Context) (<-chan Event, error)

	// CheckSessions returns what the store holds now for the credential
	// of each ref, in the order of refs, read in one batch (one read
	// transaction, one pipeline): what live sessions are checked against
	// when events may have been lost. An account or app password that no
	// longer exists is a nil field, not an error. The returned values may
	// be shared between refs of one account and must not be modified.
	CheckSessions(ctx context.Context, refs []SessionRef) ([]SessionState, error)

	Close() error
}

// AccountEvent says which live sessions a change of an account from before
// to after must end, if any (see UpdateAccount): every backend publishes
// this event after committing the change.
func AccountEvent(before, after Account) (Event, bool) {
	ev := Event{Kind: EventAccountChanged, Username: after.Username}
	switch {
	case after.Disabled && !before.Disabled:
		return ev, true
	case after.MFA && !before.MFA, after.PasswordHash != before.PasswordHash:
		ev.PrimaryOnly = true
		return ev, true
	}
	return Event{}, false
}

// SortAppPasswords orders list as ListAppPasswords returns it: by creation
// time, then ID.
func SortAppPasswords(list []AppPassword) {
	slices.SortFunc(list, func(a, b AppPassword) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
}
