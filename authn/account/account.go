// Package account changes accounts and app passwords, and records who did:
// it is the one place where the portal, the CLI and the CLI's control
// socket create users, turn MFA and admin rights on and off, disable
// accounts, set primary passwords and aliases, and create and revoke app
// passwords. Every change writes an audit record naming its Actor.
//
// It sits under authn because it stores what authn mints (password hashes,
// app passwords) and audits with authn's Auditor; authn itself only decides
// logins and never writes an account.
//
// Typical use:
//
//	svc := &account.Service{Store: db, Verifier: v, AuditLog: audit}
//	np, err := svc.CreateAppPassword(ctx, account.Actor{Door: account.DoorCLI, Name: "root"},
//		"alice@example.org", "Outlook", account.AppPasswordOptions{})
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// Store is what the service needs of a backend: accounts and app passwords,
// and the per-account audit records.
type Store interface {
	store.Store
	store.AuditLog
}

// Service performs and audits account changes. Set the fields before first
// use; they must not change afterwards. Its methods are safe for concurrent
// use.
type Service struct {
	// Store is required.
	Store Store
	// Verifier hashes primary passwords and mints app passwords; required.
	// Its KeepAppPasswordsOnPasswordChange is the policy SetPassword
	// follows.
	Verifier *authn.Verifier
	// AuditLog receives one "audit" record per change (the audit stream).
	// If nil, changes are recorded in Store only.
	AuditLog *slog.Logger
	// Notify, if not nil, is handed every change's audit record, to tell
	// the account's owner (authn.Auditor.Notify).
	Notify authn.AuditNotifier
	// Logger receives one Info line per change and audit store failures.
	// If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Retire is the policy for unused app passwords (retire.go); its
	// zero value retires none.
	Retire Retirement
	// MaxAppPasswords caps the app passwords of one account (cap.go).
	// Zero: DefaultMaxAppPasswords (40); negative: no cap.
	MaxAppPasswords int

	creating userLocks
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Door is the way a change reached the service.
type Door string

// Doors.
const (
	DoorPortal  Door = "portal"  // the web portal: Name is the signed-in account
	DoorCLI     Door = "cli"     // the CLI on the store itself: Name is the Unix user running it
	DoorControl Door = "control" // a running server's control socket: Name is the socket peer's Unix user
	DoorSystem  Door = "system"  // passgate itself, a job of serve: Name is the job ("retire")
)

// Actor is who asks for a change, as the door that carried the request
// knows them. Only the door sets it: a request never names its own actor.
type Actor struct {
	Door Door
	Name string
	// Remote and Client are the web client's address and user agent
	// (portal only), recorded with the change.
	Remote netip.AddrPort
	Client string
}

// String is the actor as audit records show it: "portal:alice@example.org",
// "cli:root", "control:passgate".
func (a Actor) String() string { return string(a.Door) + ":" + a.Name }

func (a Actor) check() error {
	switch a.Door {
	case DoorPortal, DoorCLI, DoorControl, DoorSystem:
	default:
		return fmt.Errorf("account change: unknown door %q", a.Door)
	}
	if a.Name == "" {
		return errors.New("account change: the actor has no name")
	}
	return nil
}

// Audit protocols of account changes (store.AuditRecord.Protocol).
const (
	// ProtocolPortal: a user changed their own account in the portal.
	ProtocolPortal = "portal"
	// ProtocolAdmin: anyone else changed it (a portal admin, the CLI, the
	// control socket).
	ProtocolAdmin = "admin"
)

// protocol is ProtocolPortal for self-service, else ProtocolAdmin.
func (a Actor) protocol(username string) string {
	if a.Door == DoorPortal && a.Name == username {
		return ProtocolPortal
	}
	return ProtocolAdmin
}

// Audit results of account changes (store.AuditRecord.Result).
const (
	ResultUserCreated         = "user-created"
	ResultMFAOn               = "require-mfa"
	ResultMFAOff              = "mfa-off"
	ResultMFAReset            = "reset-mfa"
	ResultDisabled            = "disable"
	ResultEnabled             = "enable"
	ResultAdminOn             = "admin-on"
	ResultAdminOff            = "admin-off"
	ResultPasswordChanged     = "password-changed"
	ResultAliasAdded          = "alias-added"
	ResultAliasRemoved        = "alias-removed"
	ResultAppPasswordCreated  = "app-password-created"
	ResultAppPasswordRevoked  = "app-password-revoked"
	ResultAppPasswordsDeleted = "delete-app-passwords"
	// ResultAppPasswordRetireWarning and ResultAppPasswordRetired: retire.go.
)

// audit records one change to username's account: in the store, in the
// audit stream if there is one, and as an Info line.
func (s *Service) audit(ctx context.Context, who Actor, username, result string, p *store.AppPassword) {
	rec := store.AuditRecord{Time: s.now(), Protocol: who.protocol(username), Username: username,
		Remote: who.Remote, Client: who.Client, Result: result, Actor: who.String()}
	attrs := []any{"actor", rec.Actor, "user", username, "change", result}
	if p != nil {
		rec.AppPasswordID, rec.AppPasswordName = p.ID, p.Name
		attrs = append(attrs, "app_password_id", p.ID)
	}
	s.logger().InfoContext(ctx, "account change", attrs...)
	s.recordAudit(ctx, rec)
}

// recordAudit stores rec and writes it to the audit stream.
func (s *Service) recordAudit(ctx context.Context, rec store.AuditRecord) {
	au := authn.Auditor{Log: s.AuditLog, Store: s.Store, Logger: s.logger(), Notify: s.Notify}
	au.Record(ctx, rec)
}

// FieldError is a request refused because of one field's value. Its text
// starts with the field's name ("username: ...") and never holds a secret.
type FieldError struct {
	Field string // "username", "password", "name", "scopes", "expires", "allow-from", "alias", "id"
	Msg   string
	Err   error // store.ErrNotFound, store.ErrExists, or nil
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, wrapped error, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...), Err: wrapped}
}

// normUser normalises a username of a request.
func normUser(username string) (string, error) {
	u, err := store.NormalizeUsername(username)
	if err != nil {
		return "", &FieldError{Field: "username", Msg: err.Error()}
	}
	return u, nil
}

// noAccount is the error for a username without an account.
func noAccount(username string) error {
	return fieldErr("username", store.ErrNotFound, "no account %q", username)
}

// storeErr maps the store's ErrNotFound for username to noAccount and
// wraps any other error with the operation.
func storeErr(op, username string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return noAccount(username)
	}
	return fmt.Errorf("%s of %s: %w", op, username, err)
}
