package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/store"
)

// MaxSecretLen bounds the secret of a login attempt, in bytes.
const MaxSecretLen = 1024

// Verifier decides logins and manages credentials against a store. Set the
// exported fields before first use; a Verifier must not be copied after.
type Verifier struct {
	// Store is required.
	Store store.Store
	// Params are the argon2id parameters of new hashes and of the dummy
	// hash run for unknown users. If zero, DefaultParams.
	Params Params
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Logger receives warnings. If nil, slog.Default().
	Logger *slog.Logger
	// AppPasswordsOnly refuses primary passwords for mail logins of every
	// account, MFA or not (Fastmail's policy), with the same decision as an
	// MFA account: PrimaryRefusedMFA.
	AppPasswordsOnly bool
	// KeepAppPasswordsOnPasswordChange, if set, keeps an account's app
	// passwords when its primary password changes. By default they are all
	// revoked, as Google does: a changed password often means a compromise.
	KeepAppPasswordsOnPasswordChange bool
	// Directory, if not nil, is where accounts and their primary
	// passwords come from (an operator's directory: see Directory). Nil:
	// passgate's own accounts (the "store" kind), whose primary passwords
	// the Verifier checks itself.
	Directory *Directory
	// MFA says which accounts must use a second factor. If zero,
	// MFAGroup.
	MFA MFAPolicy
	// Names normalises logins (lower case, Names.DefaultDomain added to a
	// login without one), as the directory sees them. The zero value only
	// lower-cases and checks them.
	Names directory.Names
	// MasterSeparators are what the upstream logins put between user and
	// master user (login-master mode: Dovecot's auth_master_user_separator).
	// A user name holding one would make the upstream read part of it as a
	// master user, so CreateAccount refuses it and Verify decides such a
	// name as an unknown user (one dummy hash, like any unknown user).
	// Empty: none.
	MasterSeparators []string
	// MaxConcurrentHashes bounds the argon2id evaluations running at once
	// (each holds Params.MemoryKiB of memory: 19 MiB by default), so that a
	// burst of logins queues instead of exhausting memory. If zero,
	// 2 x GOMAXPROCS.
	MaxConcurrentHashes int
	// Metrics, if not nil, observes each argon2id evaluation.
	Metrics HashMetrics
	// DevicePolicy is what a login with an app password from another
	// device than its bound one does (device.go), for passwords without
	// a policy of their own: store.DevicePolicyNotify, Block or Off. If
	// empty, DefaultDevicePolicy (notify). The Guard applies it.
	DevicePolicy string

	keyMu sync.Mutex
	key   []byte // lookup key, cached after the first successful load

	dummyMu sync.Mutex
	dummy   string // PHC string no secret matches, made once with params()

	evaluations atomic.Int64

	semOnce sync.Once
	sem     chan struct{}
}

// acquire takes one of the MaxConcurrentHashes slots; release gives it back.
func (v *Verifier) acquire() (release func()) {
	v.semOnce.Do(func() {
		n := v.MaxConcurrentHashes
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		v.sem = make(chan struct{}, n)
	})
	v.sem <- struct{}{}
	return func() { <-v.sem }
}

func (v *Verifier) params() Params {
	if v.Params == (Params{}) {
		return DefaultParams
	}
	return v.Params
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

func (v *Verifier) logger() *slog.Logger {
	if v.Logger == nil {
		return slog.Default()
	}
	return v.Logger
}

// HashEvaluations returns the number of argon2id evaluations this Verifier
// ran so far (logins and new hashes), for tests and metrics.
func (v *Verifier) HashEvaluations() int64 { return v.evaluations.Load() }

// hash makes a new verifier for secret with v's params.
func (v *Verifier) hash(secret string) (string, error) {
	v.evaluations.Add(1)
	defer v.acquire()()
	return v.params().Hash([]byte(secret))
}

// check runs one argon2id evaluation of secret against phc.
func (v *Verifier) check(phc, secret string) (bool, error) {
	v.evaluations.Add(1)
	defer v.acquire()()
	start := time.Now()
	ok, err := VerifyHash(phc, []byte(secret))
	if v.Metrics != nil {
		v.Metrics.Hashed(time.Since(start))
	}
	return ok, err
}

// HashMetrics observes argon2id evaluations (internal/metrics implements
// it).
type HashMetrics interface {
	Hashed(d time.Duration)
}

// burn runs one argon2id evaluation that never matches, so that a failure
// found early costs as much as a wrong secret.
func (v *Verifier) burn(secret string) error {
	v.dummyMu.Lock()
	if v.dummy == "" {
		p := v.params()
		if err := p.Validate(); err != nil {
			v.dummyMu.Unlock()
			return fmt.Errorf("dummy hash: %w", err)
		}
		// A random key needs no argon2id to make and matches no secret.
		// (crypto/rand.Read never fails.)
		salt, key := make([]byte, saltLen), make([]byte, keyLen)
		rand.Read(salt)
		rand.Read(key)
		v.dummy = formatPHC(p, salt, key)
	}
	dummy := v.dummy
	v.dummyMu.Unlock()
	_, err := v.check(dummy, secret)
	return err
}

// lookupKey returns the store's lookup key, cached after the first load.
func (v *Verifier) lookupKey(ctx context.Context) ([]byte, error) {
	v.keyMu.Lock()
	defer v.keyMu.Unlock()
	if v.key != nil {
		return v.key, nil
	}
	key, err := v.Store.LookupKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("lookup key: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("lookup key: store returned an empty key")
	}
	v.key = key
	return key, nil
}

// Verify decides one login attempt. Every decision costs exactly one
// argon2id evaluation, except a primary password checked by the Directory,
// which costs the directory's work instead; a non-nil error means the
// store or the directory failed (the client should get a temporary
// failure) and no decision was made.
func (v *Verifier) Verify(ctx context.Context, a Attempt) (Decision, error) {
	l, err := v.lookup(ctx, a)
	if err != nil {
		return Decision{}, fmt.Errorf("verify: %w", err)
	}
	d, err := v.evaluate(ctx, a, l)
	if err != nil {
		return Decision{}, err
	}
	d.state = l.state(v, a)
	return d, nil
}

// login is what the store holds for one attempt, read before any hash.
type login struct {
	user       string // normalised; "" if the username is not valid
	secretOK   bool   // the secret is not empty and not too long
	acct       store.Account
	found      bool               // the account exists
	separator  bool               // the name holds a master separator: no account can have it
	app        *store.AppPassword // the app password the secret's tag names
	normalized string             // the secret as app passwords compare it
}

// lookup does the store reads of a login: the account and the one app
// password whose keyed tag the secret has. Unknown users get the same
// reads as known ones.
func (v *Verifier) lookup(ctx context.Context, a Attempt) (login, error) {
	var l login
	username, err := v.NormalizeUsername(a.Username)
	if err != nil {
		return l, nil
	}
	l.user = username
	if a.Secret == "" || len(a.Secret) > MaxSecretLen {
		return l, nil
	}
	l.secretOK = true
	if store.CheckSeparators(username, v.MasterSeparators) != nil {
		// No such account can be created: an older one is unknown here,
		// and nothing is read for it (nor asked of a Directory).
		l.separator = true
		return l, nil
	}
	acct, err := v.Store.GetAccount(ctx, username)
	switch {
	case err == nil:
		l.acct, l.found = acct, true
	case !errors.Is(err, store.ErrNotFound):
		return l, fmt.Errorf("get account: %w", err)
	}
	key, err := v.lookupKey(ctx)
	if err != nil {
		return l, err
	}
	l.normalized = NormalizeSecret(a.Secret)
	p, err := v.Store.FindAppPassword(ctx, username, Tag(key, username, l.normalized))
	switch {
	case err == nil:
		l.app = &p
	case !errors.Is(err, store.ErrNotFound):
		return l, fmt.Errorf("find app password: %w", err)
	}
	return l, nil
}

// evaluate runs the one argon2id evaluation of a login and applies the
// account and password policy.
func (v *Verifier) evaluate(ctx context.Context, a Attempt, l login) (Decision, error) {
	d := Decision{Result: BadSecret, Username: l.user}
	switch {
	case l.user == "", !l.secretOK:
		return v.fail(d, a.Secret)
	case l.app != nil:
		return v.verifyAppPassword(ctx, a, l.acct, *l.app, l.normalized)
	case v.Directory != nil && !l.separator:
		return v.verifyWithDirectory(ctx, a, l)
	case !l.found:
		d.Result = UnknownUser
		return v.fail(d, a.Secret)
	}
	return v.verifyPrimary(ctx, a, l.acct)
}

// NormalizeUsername returns the passgate username of a login as typed
// (Names.Normalize); the Guard counts its limits under the same name.
func (v *Verifier) NormalizeUsername(login string) (string, error) {
	return v.Names.Normalize(login)
}

// state fingerprints everything besides the secret that decides a at this
// moment: the account's existence, primary password, flags and policy,
// and the app password the tag found with its policy for a's address,
// protocol and the time; with a Directory, whose answers passgate cannot
// fingerprint, the directory's current cache period. Two logins with the
// same secret and the same state get the same decision, so a decision
// remembered with its state is still right while the state is unchanged.
func (l *login) state(v *Verifier, a Attempt) [16]byte {
	h := sha256.New()
	put := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	flag := func(b bool) string { return strconv.FormatBool(b) }
	put(l.user, flag(l.secretOK), flag(l.found), flag(v.AppPasswordsOnly))
	if v.Directory != nil {
		// What the directory said is trusted for one cache period.
		put("directory", v.Directory.period())
	}
	if l.found {
		put(l.acct.PasswordHash, flag(l.acct.MFA), flag(l.acct.Disabled))
	}
	if p := l.app; p != nil {
		expired := !p.Expires.IsZero() && !p.Expires.After(v.now())
		put("app", p.ID, p.Verifier, flag(expired), flag(allowed(p.AllowFrom, a.RemoteIP)), flag(p.HasScope(a.Protocol)))
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// probe is what the Guard learns from the store about an attempt without
// any hash: its state (see login.state), and whether the secret's keyed
// tag names one of the account's app passwords (it then is that app
// password, unless 128-bit tags collided).
type probe struct {
	state       [16]byte
	appPassword bool
}

// probe does the store reads of a login (no hash).
func (v *Verifier) probe(ctx context.Context, a Attempt) (probe, error) {
	l, err := v.lookup(ctx, a)
	if err != nil {
		return probe{}, fmt.Errorf("probe: %w", err)
	}
	return probe{state: l.state(v, a), appPassword: l.app != nil}, nil
}

// fail burns one argon2id evaluation and returns d.
func (v *Verifier) fail(d Decision, secret string) (Decision, error) {
	if err := v.burn(secret); err != nil {
		return Decision{}, fmt.Errorf("verify: %w", err)
	}
	return d, nil
}

// verifyAppPassword checks the one candidate app password the tag found,
// then the account and password policy.
func (v *Verifier) verifyAppPassword(ctx context.Context, a Attempt, acct store.Account, p store.AppPassword, normalized string) (Decision, error) {
	d := Decision{Result: BadSecret, Username: acct.Username}
	ok, err := v.check(p.Verifier, normalized)
	if err != nil {
		return Decision{}, fmt.Errorf("verify: app password %s of %q: %w", p.ID, acct.Username, err)
	}
	if !ok { // tag collision: practically impossible
		return d, nil
	}
	d.AppPasswordID, d.AppPasswordName = p.ID, p.Name
	now := v.now()
	switch {
	case acct.Disabled:
		d.Result = Disabled
	case !p.Expires.IsZero() && !p.Expires.After(now):
		d.Result = Expired
	case !allowed(p.AllowFrom, a.RemoteIP):
		d.Result = AddressDenied
	case !p.HasScope(a.Protocol):
		d.Result = ScopeDenied
	default:
		d.Result = OK
	}
	if d.Result != OK {
		return d, nil
	}
	if res, err := v.directoryAdmits(ctx, acct); err != nil || res != OK {
		if err != nil {
			return Decision{}, fmt.Errorf("verify: %w", err)
		}
		d.Result = res
		return d, nil
	}
	if !p.Expires.IsZero() || len(p.AllowFrom) > 0 {
		d.restrict = &restriction{expires: p.Expires, allowFrom: p.AllowFrom}
	}
	d.app = &p
	use := store.LastUse{Time: now, IP: a.RemoteIP, Protocol: string(a.Protocol), Client: a.Client}
	err = v.Store.TouchAppPassword(ctx, acct.Username, p.ID, use)
	switch {
	case errors.Is(err, store.ErrNotFound): // revoked since FindAppPassword
		return Decision{Result: BadSecret, Username: acct.Username}, nil
	case err != nil:
		v.logger().WarnContext(ctx, "recording app password use failed",
			"username", acct.Username, "app_password_id", p.ID, "err", err)
	}
	return d, nil
}

// allowed reports whether ip is in one of prefixes; no prefixes allow any
// address.
func allowed(prefixes []netip.Prefix, ip netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// verifyPrimary checks the secret, as typed (primary passwords are case and
// space sensitive), against the account's primary password.
func (v *Verifier) verifyPrimary(ctx context.Context, a Attempt, acct store.Account) (Decision, error) {
	d := Decision{Result: BadSecret, Username: acct.Username}
	if acct.PasswordHash == "" {
		return v.fail(d, a.Secret)
	}
	ok, err := v.check(acct.PasswordHash, a.Secret)
	if err != nil {
		return Decision{}, fmt.Errorf("verify: primary password of %q: %w", acct.Username, err)
	}
	switch {
	case !ok:
		// A wrong secret is BadSecret whatever the account's state.
	case acct.Disabled:
		d.Result = Disabled
	case v.mfaRequired(directory.Entry{}, acct) || v.AppPasswordsOnly:
		d.Result = PrimaryRefusedMFA
		if v.mfaRequired(directory.Entry{}, acct) && !acct.MFA {
			v.turnOnMFA(ctx, acct.Username) // MFAAll: the portal asks for enrolment
		}
	default:
		d.Result = OK
		d.restrict = &restriction{primaryHash: acct.PasswordHash}
	}
	return d, nil
}
