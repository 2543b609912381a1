package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/passgate/passgate/store"
)

// Guard is the login decision as the proxies use it: a Verifier behind
// brute-force limits and a tarpit, a verified-credential cache and the audit
// log. It has the Verifier's Verify method, so it fits wherever a Verifier
// does:
//
//	g := &authn.Guard{Verifier: v, Counters: counters, Audit: auditor,
//		Limits: limits, Cache: &authn.Cache{}}
//	srv := &imap.Server{Auth: g, ...}
//
// One Verify, in order:
//  1. Trusted networks skip steps 2 and 5.
//  2. Limits: if the address, its network, the account from this address
//     or (unless the address is known to the account) the account has
//     too many recent failures, the answer is RateLimited after
//     TarpitMax, and no argon2id runs.
//  3. Cache: a live OK for the same (user, protocol, secret) is reused.
//  4. Verifier: one argon2id.
//  5. A success resets the account+address failures and marks the address
//     as known; a failure is counted (unless the same secret already
//     failed from there) and the reply waits TarpitBase × 2^(n-1), n the
//     address's recent failures, at most TarpitMax.
//  6. Audit: one record, whatever the outcome.
//
// Set the fields before first use; a Guard must not be copied after.
type Guard struct {
	// Verifier decides what the Guard does not (a *Verifier). Required.
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
	Limits Limits
	// Cache reuses recent OK decisions. If nil, every login runs argon2id.
	Cache *Cache
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done. If nil, a timer. Tests inject
	// one that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives warnings (counter failures). If nil, slog.Default().
	Logger *slog.Logger

	recent recentSet // failed (user, address, secret) MACs
}

// Verify decides a, as described on Guard. A non-nil error means the store
// or the counters failed and no decision was made.
func (g *Guard) Verify(ctx context.Context, a Attempt) (Decision, error) {
	if g.Verifier == nil || g.Counters == nil {
		return Decision{}, errors.New("authn: Guard needs a Verifier and Counters")
	}
	start := g.now()
	d, err := g.decide(ctx, a)
	result := string(d.Result)
	if err != nil {
		result = AuditAuthError
	}
	g.Audit.Record(ctx, auditRecord(a, d, result, start, g.now().Sub(start)))
	return d, err
}

// AuditUpstreamError records that the upstream login after the OK
// decision d failed; proxies call it (through an interface of their own)
// so that the audit shows the attempt's real outcome.
func (g *Guard) AuditUpstreamError(ctx context.Context, a Attempt, d Decision) {
	now := g.now()
	g.Audit.Record(ctx, auditRecord(a, d, AuditUpstreamError, now, 0))
}

func (g *Guard) decide(ctx context.Context, a Attempt) (Decision, error) {
	user, err := store.NormalizeUsername(a.Username)
	if err != nil {
		user = ""
	}
	src := sourceOf(a.RemoteIP)
	keys := keysFor(user, src)
	trusted := g.Limits.trusted(a.RemoteIP)
	if !trusted {
		limit, err := g.blocked(ctx, keys)
		if err != nil {
			return Decision{Username: user}, err
		}
		if limit != "" {
			g.logger().DebugContext(ctx, "login refused by rate limit", "limit", limit,
				"user", user, "remote", a.RemoteIP.String(), "session", a.SessionID)
			g.sleep(ctx, g.Limits.tarpitMax())
			return Decision{Result: RateLimited, Username: user}, nil
		}
	}

	var gen uint64
	if g.Cache != nil && user != "" {
		d, ok := g.Cache.lookup(user, a, g.now())
		if ok {
			ok, err := g.recheck(ctx, a, d)
			if err != nil {
				return Decision{Username: user}, err
			}
			if ok {
				if !trusted {
					g.succeeded(ctx, keys)
				}
				return d, nil
			}
			g.Cache.Drop(store.Event{Kind: store.EventAppPasswordRevoked, Username: user, AppPasswordID: d.AppPasswordID})
		}
		gen = g.Cache.generation()
	}
	d, err := g.Verifier.Verify(ctx, a)
	if err != nil {
		return d, err
	}
	if d.Result == OK {
		if g.Cache != nil {
			g.Cache.put(gen, user, a, d, g.now())
		}
		if !trusted {
			g.succeeded(ctx, keys)
		}
		return d, nil
	}
	if !trusted {
		g.sleep(ctx, g.failed(ctx, keys, user, src, a.Secret))
	}
	return d, nil
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
	if g.Sleep != nil {
		g.Sleep(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
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

// recheck asks the Verifier, if it can, whether a cached OK still holds.
func (g *Guard) recheck(ctx context.Context, a Attempt, d Decision) (bool, error) {
	r, ok := g.Verifier.(rechecker)
	if !ok {
		return true, nil
	}
	return r.Recheck(ctx, a, d)
}
