package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/internal/wait"
	"github.com/passgate/passgate/store"
)

// Guard is the login decision as the proxies and the portal use it: a
// Verifier behind brute-force limits and a tarpit, a verified-credential
// cache, a memory of known refusals, and the audit log. It has the
// Verifier's Verify method, so it fits wherever a Verifier does:
//
//	g := &authn.Guard{Verifier: v, Counters: counters, Audit: auditor,
//		Limits: limits, Cache: &authn.Cache{}}
//	srv := &imap.Server{Auth: g, ...}
//
// One Verify, in order:
//  1. Single flight: attempts with the same (user, protocol, secret,
//     address) that arrive while one is being decided wait for it and
//     share its decision (Outlook opens many connections at once).
//  2. Reserve (skipped for trusted networks): the attempt is counted, in
//     one round trip, against the address, its network, the account from
//     this address, the account (unless the address is known to it) and
//     the hash budgets, before anything else. If a failure limit is now
//     exceeded the answer is RateLimited after TarpitMax, unverified, and
//     the reservation is given back. An account refused only by
//     MaxPerAccount still lets through an attempt whose secret is one of
//     its app passwords (found by keyed tag, no hash), once per
//     BlockedVerifyInterval: its owner gets in, guesses do not.
//  3. Cache: a live OK for the same (user, protocol, secret) is reused.
//  4. Known refusals: a (user, secret) already refused in the same
//     account state gets the same answer without argon2id (a repeated
//     wrong password costs one hash, then none).
//  5. Hash budgets: an attempt about to cost argon2id is refused if its
//     address, network or account has had too many this window.
//  6. Verifier: one argon2id.
//  7. Device: an OK with an app password (step 3 or 6) is checked against
//     the password's bound device (device.go, no hash): a first use binds
//     it, a drift is recorded, and under the block policy refused as
//     DeviceRefused, which then settles as a failure (not remembered in
//     step 4: it depends on the device, not on the secret).
//  8. Settle: a success (step 3 or 6) gives its reservation back, resets
//     the account+address failures and marks the address as known; a
//     failure stays counted (except against the account from a known
//     address), is remembered (step 4) and waits TarpitBase × 2^(n-1), n
//     the address's failures, at most TarpitMax; a known refusal (step 4)
//     gives the reservation back (a repeat is not a new guess) and waits
//     as the address's last failure did.
//  9. Audit: one record per attempt, whatever the outcome, and one more
//     for a device's first use or drift (once per flight).
//
// SecondFactor counts second-factor attempts in the same limits.
//
// Set the fields before first use; a Guard must not be copied after.
type Guard struct {
	// Verifier decides what the Guard does not (a *Verifier; with another
	// implementation the Guard cannot check a known refusal against the
	// store nor recognise an app password during an account block).
	// Required.
	Verifier interface {
		Verify(ctx context.Context, a Attempt) (Decision, error)
	}
	// Counters hold the failure counts, shared by every instance on the
	// same backend (store/memcount for one process, store/redis for
	// several). Required.
	Counters store.Counters
	// Audit records every attempt. If nil, nothing is recorded.
	Audit *Auditor
	// Limits are the thresholds and delays; zero fields take defaults.
	// SetLimits replaces them while the Guard is in use.
	Limits   Limits
	reloaded atomic.Pointer[Limits] // the last SetLimits
	// Cache reuses recent OK decisions. If nil, every login runs argon2id.
	Cache *Cache
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done. If nil, a timer. Tests inject
	// one that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives warnings (counter failures). If nil, slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts cache hits, blocks and tarpit delays.
	Metrics GuardMetrics

	keyOnce sync.Once
	key     [32]byte // process-random HMAC key of flights and known refusals

	flight flights
	known  knownSet

	// inFlight, if set, runs once an attempt has joined or leads its
	// flight (tests hold a flight open until every attempt is in).
	inFlight func()
}

// GuardMetrics counts what the Guard does besides deciding
// (internal/metrics implements it).
type GuardMetrics interface {
	CacheHit()
	Blocked(limit string) // refused unverified by the named limit
	Tarpit(d time.Duration)
}

// outcome is what one decision of a login came to, shared by the attempts
// that waited for it.
type outcome struct {
	d     Decision
	delay time.Duration // the tarpit before the reply
}

// Verify decides a, as described on Guard. A non-nil error means the store
// or the counters failed and no decision was made.
func (g *Guard) Verify(ctx context.Context, a Attempt) (Decision, error) {
	if g.Verifier == nil || g.Counters == nil {
		return Decision{}, errors.New("authn: Guard needs a Verifier and Counters")
	}
	start := g.now()
	user, err := g.normalize(a.Username)
	if err != nil {
		user = ""
	}
	key := g.flightKey(user, a)
	f, leader := g.flight.join(key)
	if g.inFlight != nil {
		g.inFlight()
	}
	if leader {
		// Shared: not cancelled when the first client goes away.
		lo, lerr := g.lead(context.WithoutCancel(ctx), a, user)
		g.flight.land(key, f, lo, lerr)
	} else {
		<-f.done
	}
	o, err := f.o, f.err
	if err != nil {
		o = outcome{d: Decision{Username: user}}
	}
	g.sleep(ctx, o.delay)
	result := string(o.d.Result)
	if err != nil {
		result = AuditAuthError
	}
	rec := auditRecord(a, o.d, result, start, g.now().Sub(start))
	rec.Device = o.d.device
	g.Audit.Record(ctx, rec)
	return o.d, err
}

// AuditUpstreamError records that the upstream login after the OK
// decision d failed; proxies call it (through an interface of their own)
// so that the audit shows the attempt's real outcome.
func (g *Guard) AuditUpstreamError(ctx context.Context, a Attempt, d Decision) {
	now := g.now()
	g.Audit.Record(ctx, auditRecord(a, d, AuditUpstreamError, now, 0))
}

// AuditSessionLimit records that the login after the OK decision d was
// refused because the account had its maximum of live sessions already.
func (g *Guard) AuditSessionLimit(ctx context.Context, a Attempt, d Decision) {
	g.Audit.Record(ctx, auditRecord(a, d, AuditSessionLimit, g.now(), 0))
}

// lead decides for a flight, on the goroutine of the attempt that leads
// it. A panic becomes an error of every attempt in the flight, logged
// with its stack, so that none of them waits for ever.
func (g *Guard) lead(ctx context.Context, a Attempt, user string) (o outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			g.logger().Error("login decision panicked", "panic", p, "stack", string(debug.Stack()))
			err = errors.New("authn: login decision failed")
		}
	}()
	return g.decide(ctx, a, user)
}

// decide runs steps 2 to 7 of Verify for the attempt that leads a flight.
func (g *Guard) decide(ctx context.Context, a Attempt, user string) (outcome, error) {
	keys := keysFor(user, sourceOf(a.RemoteIP))
	var r *reservation
	blocked := false
	if !g.limits().trusted(a.RemoteIP) {
		var err error
		if r, err = g.reserve(ctx, keys, true, false); err != nil {
			return outcome{}, err
		}
		if limit := r.refused(); limit != "" {
			if limit != "account" || !g.namesAppPassword(ctx, a) {
				return g.refuse(ctx, r, a, user, limit), nil
			}
			blocked = true // verified at the account's bounded rate
		}
	}
	d, ok, err := g.cached(ctx, a, user)
	if err != nil {
		r.giveBack(ctx)
		return outcome{}, err
	}
	if ok {
		if g.Metrics != nil {
			g.Metrics.CacheHit()
		}
		if d, err = g.checkDevice(ctx, a, d); err != nil {
			r.giveBack(ctx)
			return outcome{}, err
		}
		if d.Result == DeviceRefused {
			r.failed(ctx)
			return outcome{d: d, delay: r.delay(true)}, nil
		}
		r.succeeded(ctx, false)
		return outcome{d: d}, nil
	}
	if d, ok := g.knownRefusal(ctx, a, user); ok {
		r.giveBack(ctx)
		return outcome{d: d, delay: r.delay(false)}, nil
	}
	if blocked && !g.takeToken(ctx, keys) {
		return g.refuse(ctx, r, a, user, "account"), nil
	}
	if limit := r.overBudget(); limit != "" {
		return g.refuse(ctx, r, a, user, limit), nil
	}
	var gen uint64
	if g.Cache != nil {
		gen = g.Cache.generation()
	}
	d, err = g.Verifier.Verify(ctx, a)
	if err != nil {
		r.giveBack(ctx)
		return outcome{}, err
	}
	if d.Result == OK {
		if g.Cache != nil && user != "" && !d.uncached {
			cd := d
			cd.app = nil
			g.Cache.put(gen, user, a, cd, g.now())
		}
		if d, err = g.checkDevice(ctx, a, d); err != nil {
			r.giveBack(ctx)
			return outcome{}, err
		}
	}
	if d.Result == OK {
		r.succeeded(ctx, true)
		return outcome{d: d}, nil
	}
	if d.Result == DeviceRefused {
		r.failed(ctx)
		return outcome{d: d, delay: r.delay(true)}, nil
	}
	g.remember(a, user, d)
	r.failed(ctx)
	return outcome{d: d, delay: r.delay(true)}, nil
}

// refuse answers RateLimited, unverified, and gives the reservation back
// (a refused attempt is not a failure: it must not push other limits).
func (g *Guard) refuse(ctx context.Context, r *reservation, a Attempt, user, limit string) outcome {
	r.giveBack(ctx)
	if g.Metrics != nil {
		g.Metrics.Blocked(limit)
	}
	g.logger().DebugContext(ctx, "login refused by rate limit", "limit", limit,
		"user", user, "remote", a.RemoteIP.String(), "session", a.SessionID)
	return outcome{d: Decision{Result: RateLimited, Username: user}, delay: g.limits().tarpitMax()}
}

// cached returns a live cached OK for a, confirmed against the store.
func (g *Guard) cached(ctx context.Context, a Attempt, user string) (Decision, bool, error) {
	if g.Cache == nil || user == "" {
		return Decision{}, false, nil
	}
	d, ok := g.Cache.lookup(user, a, g.now())
	if !ok {
		return Decision{}, false, nil
	}
	ok, app, err := g.recheck(ctx, a, d)
	d.app = app
	if err != nil || !ok {
		if err == nil {
			g.Cache.Drop(store.Event{Kind: store.EventAppPasswordRevoked, Username: user, AppPasswordID: d.AppPasswordID})
		}
		return Decision{}, false, err
	}
	return d, true, nil
}

// namesAppPassword reports whether a's secret is one of the account's app
// passwords, by its keyed tag (no hash). Store errors count as no.
func (g *Guard) namesAppPassword(ctx context.Context, a Attempt) bool {
	p, ok := g.Verifier.(prober)
	if !ok {
		return false
	}
	pr, err := p.probe(ctx, a)
	return err == nil && pr.appPassword
}

// mac is the keyed MAC of parts under the Guard's process-random key.
func (g *Guard) mac(parts ...string) [16]byte {
	g.keyOnce.Do(func() { rand.Read(g.key[:]) })
	h := hmac.New(sha256.New, g.key[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var m [16]byte
	copy(m[:], h.Sum(nil))
	return m
}

// flightKey names the attempts that share one decision.
func (g *Guard) flightKey(user string, a Attempt) string {
	m := g.mac("flight", user, string(a.Protocol), a.Secret, a.RemoteIP.Unmap().String(),
		a.Device.TLS, a.Device.Client, a.Device.Network.String())
	return string(m[:])
}

// normalize returns the username the limits count a login under: the
// Verifier's (directory.Names: case, default domain), so that "alice" and
// "alice@example.org" share one account's limits.
func (g *Guard) normalize(login string) (string, error) {
	if n, ok := g.Verifier.(interface {
		NormalizeUsername(string) (string, error)
	}); ok {
		return n.NormalizeUsername(login)
	}
	return store.NormalizeUsername(login)
}

func (g *Guard) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// sleep waits d; an interrupted wait only shortens the delay of a client
// that is going away.
func (g *Guard) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	if g.Metrics != nil {
		g.Metrics.Tarpit(d)
	}
	if g.Sleep != nil {
		g.Sleep(ctx, d)
		return
	}
	wait.Sleep(ctx, d)
}

func (g *Guard) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.Default()
	}
	return g.Logger
}

// remoteOf is the attempt's address for the audit record (the port is not
// known to authn; the session id links to the proxy's log line).
func remoteOf(a Attempt) netip.AddrPort {
	if !a.RemoteIP.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.RemoteIP.Unmap(), 0)
}

// rechecker confirms a cached decision against the store without a slow
// hash (*Verifier implements it).
type rechecker interface {
	Recheck(ctx context.Context, a Attempt, d Decision) (bool, error)
}

// recheck asks the Verifier, if it can, whether a cached OK still holds,
// and returns the app password's record it read, if any.
func (g *Guard) recheck(ctx context.Context, a Attempt, d Decision) (bool, *store.AppPassword, error) {
	if v, ok := g.Verifier.(*Verifier); ok {
		return v.recheck(ctx, a, d)
	}
	r, ok := g.Verifier.(rechecker)
	if !ok {
		return true, nil, nil
	}
	ok, err := r.Recheck(ctx, a, d)
	return ok, nil, err
}

// checkDevice applies first-use binding (step 7) to an OK decision whose
// Verifier is a *Verifier, and audits a first use or a drift. The
// returned decision no longer holds the app password's record.
func (g *Guard) checkDevice(ctx context.Context, a Attempt, d Decision) (Decision, error) {
	p := d.app
	d.app = nil
	v, ok := g.Verifier.(*Verifier)
	if !ok || p == nil {
		return d, nil
	}
	d, note, err := v.checkDevice(ctx, a, d, p)
	if err != nil {
		return Decision{}, err
	}
	if note == noteFirstUse || note == noteDrift {
		rec := auditRecord(a, d, string(note), g.now(), 0)
		dev := a.Device
		rec.Device = &dev
		g.Audit.Record(ctx, rec)
	}
	if d.Result == DeviceRefused {
		dev := a.Device
		d.device = &dev
	}
	return d, nil
}

// SetLimits replaces Limits for the logins that follow (a configuration
// reload); the failure counts already made stay.
func (g *Guard) SetLimits(l Limits) { g.reloaded.Store(&l) }

// limits is the last SetLimits, or Limits before any.
func (g *Guard) limits() *Limits {
	if p := g.reloaded.Load(); p != nil {
		return p
	}
	return &g.Limits
}
