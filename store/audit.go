package store

import (
	"context"
	"net/netip"
	"time"
)

// AuditKeep is how many recent records of each kind a backend keeps per
// account: the newest AuditKeep failures (see AuditRecord.Failure) and,
// apart, the newest AuditKeep other records (sign-ins and changes), so
// that failures, which anyone can cause, never push out the account's own
// sign-ins. Older ones are dropped on append.
const AuditKeep = 100

// AuditMax is the most records RecentAudit can return for one account.
const AuditMax = 2 * AuditKeep

// AuditRecord is one login attempt (or one administrative action) as the
// audit log and "recent sign-ins" show it. It never holds a secret.
type AuditRecord struct {
	Time     time.Time      `json:"time"`
	Protocol string         `json:"protocol"` // "imap", "smtp", "portal", "admin"
	Username string         `json:"username"`
	Remote   netip.AddrPort `json:"remote,omitzero"`
	// TLS is the negotiated version ("TLS 1.3"), empty without TLS.
	TLS       string `json:"tls,omitempty"`
	Client    string `json:"client,omitempty"` // IMAP ID name/version, user agent
	Mechanism string `json:"mechanism,omitempty"`
	// Result is an authn.Result ("ok", "bad-secret", ...), "rate-limited",
	// "upstream-error", or for admin actions the action's name.
	Result          string        `json:"result"`
	AppPasswordID   string        `json:"app_password_id,omitempty"`
	AppPasswordName string        `json:"app_password_name,omitempty"`
	SessionID       string        `json:"session_id,omitempty"`
	Duration        time.Duration `json:"duration,omitempty"`
	// Actor is who made an account change (authn/account): "portal:USER",
	// "cli:UNIXUSER" or "control:UNIXUSER"; empty for a login attempt.
	Actor string `json:"actor,omitempty"`
	// Device is what the client was seen as, on the records of first-use
	// binding (first use, drift, a login refused for drift, a device
	// accepted); nil on others.
	Device *Device `json:"device,omitempty"`
	// RemovalOn is the day an unused app password will be removed, on the
	// record that announces it ("app-password-retire-warning"); zero on
	// others.
	RemovalOn time.Time `json:"removal_on,omitzero"`
}

// failureResults are the results of attempts that did not get in: the
// authn results other than "ok", "rate-limited", "bad-code" (a wrong
// second factor) and the temporary "auth-error" and "upstream-error".
var failureResults = map[string]bool{
	"bad-secret": true, "unknown-user": true, "disabled": true, "primary-refused-mfa": true,
	"scope-denied": true, "expired": true, "address-denied": true, "rate-limited": true,
	"bad-code": true, "auth-error": true, "upstream-error": true,
	"device-refused":  true, // a right app password from another device, policy block
	"idp-mfa-missing": true, // portal OIDC sign-in without the required MFA
}

// Failure reports whether r is an attempt that did not get in (anyone can
// cause those) rather than a sign-in or a change to the account.
func (r AuditRecord) Failure() bool { return failureResults[r.Result] }

// SeqRecord is an audit record with its place in its account's append
// order, for backends that keep the two kinds apart and merge them.
type SeqRecord struct {
	Seq uint64
	Rec AuditRecord
}

// MergeAudit merges two lists that are each newest first (by Seq) into one,
// newest first, of at most n records.
func MergeAudit(a, b []SeqRecord, n int) []AuditRecord {
	out := make([]AuditRecord, 0, max(0, min(n, len(a)+len(b))))
	for len(out) < n && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].Seq > b[0].Seq) {
			out, a = append(out, a[0].Rec), a[1:]
		} else {
			out, b = append(out, b[0].Rec), b[1:]
		}
	}
	return out
}

// AuditLog keeps the recent attempts of each account, so that the CLI and
// the portal can show "recent sign-ins". The full log is the slog audit
// stream; this is the capped per-account view.
type AuditLog interface {
	// AppendAudit stores rec under rec.Username, keeping the newest
	// AuditKeep failures and, apart, the newest AuditKeep other records of
	// that account. For a username with no account it stores nothing and
	// returns nil (attackers must not fill the store).
	AppendAudit(ctx context.Context, rec AuditRecord) error
	// RecentAudit returns up to n records of the account, of both kinds,
	// newest (last appended) first, at most AuditMax; ErrNotFound if the
	// account does not exist.
	RecentAudit(ctx context.Context, username string, n int) ([]AuditRecord, error)
}
