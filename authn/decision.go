package authn

import (
	"net/netip"
	"time"

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
	TLS       string // negotiated TLS version ("TLS 1.3"), "" without TLS; for audit
	SessionID string // the proxy's session id, for audit
	// Device is what the client was seen as (TLS fingerprint, client
	// name, network), for first-use binding (device.go); zero: not
	// checked.
	Device store.Device
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
	// RateLimited: the Guard refused the attempt before verifying it
	// (too many recent failures from the address, its network or against
	// the account). It says nothing about the secret.
	RateLimited Result = "rate-limited"
	// BadCode: a wrong second factor (TOTP or recovery code), from
	// Guard.SecondFactor.
	BadCode Result = "bad-code"
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

	// restrict is the app password's expiry and allowed networks at the
	// time of an OK decision (nil: none), so that the Guard's cache can
	// re-check them on a hit.
	restrict *restriction
	// state fingerprints what the decision depended on besides the secret
	// (see login.state), so that the Guard can reuse a refusal while it
	// is unchanged; zero from a Verifier that does not say.
	state [16]byte
	// uncached: the Guard must not reuse this OK from its cache (a primary
	// password verified by a Directory: the directory decides each one).
	uncached bool
	// app is the app password's record as the decision read it, for the
	// Guard's device check; nil once checked (never cached, never kept
	// with a session).
	app *store.AppPassword
	// device is the device a DeviceRefused refused, for its audit record.
	device *store.Device
}

// restriction is the policy of an app password that can turn an OK into a
// refusal without any store event: time passing, or another address.
type restriction struct {
	expires   time.Time
	allowFrom []netip.Prefix
	// primaryHash is the primary password hash that verified a primary
	// login, so that Recheck notices a changed password.
	primaryHash string
}
