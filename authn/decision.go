package authn

import (
	"net/netip"

	"github.com/passgate/passgate/store"
)

// Attempt is one login as a client presented it.
type Attempt struct {
	Username  string      // as typed; Verify normalises it
	Secret    string      // as typed; never logged
	Protocol  store.Scope // store.ScopeIMAP or store.ScopeSMTP
	RemoteIP  netip.Addr
	Client    string // client name/version from IMAP ID, if any
	Mechanism string // "LOGIN", "PLAIN", ... for audit
}

// Result is the outcome of a login attempt. Only OK lets the session through.
type Result string

// Results. Clients cannot tell BadSecret, UnknownUser and Disabled apart:
// they get the same reply after the same work.
const (
	OK                Result = "ok"
	BadSecret         Result = "bad-secret"
	UnknownUser       Result = "unknown-user"
	Disabled          Result = "disabled"
	PrimaryRefusedMFA Result = "primary-refused-mfa"
	ScopeDenied       Result = "scope-denied"
	Expired           Result = "expired"
	AddressDenied     Result = "address-denied"
)

// Decision is what Verify decided.
type Decision struct {
	Result Result
	// Username is the normalised username (empty if it could not be
	// normalised).
	Username string
	// AppPasswordID and AppPasswordName identify the app password used,
	// empty for a primary-password login or a failure before one matched.
	AppPasswordID   string
	AppPasswordName string
}

// ViaPrimary reports whether an OK decision came from the primary password.
func (d Decision) ViaPrimary() bool { return d.Result == OK && d.AppPasswordID == "" }
