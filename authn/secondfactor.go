package authn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SecondFactor decides a second-factor attempt (a TOTP code or a recovery
// code) for an account whose primary password was verified; the portal
// calls it, with check comparing the code. In order:
//  1. Reserve: the attempt is counted against the address, its network,
//     the account from this address, the account (unless the address is
//     known to it) and the account's second-factor lockout
//     (MaxSecondFactorFailures per SecondFactorWindow), atomically per
//     counter, before check runs. If a limit is now exceeded the answer
//     is RateLimited after TarpitMax and check does not run, so parallel
//     codes in one pending sign-in cannot race past the limit, and a new
//     password step does not reset it. Trusted networks count only in
//     the account's second-factor lockout.
//  2. check.
//  3. Settle: OK gives the reservation back, resets the account+address
//     failures and marks the address as known (as a login does), but
//     leaves earlier second-factor failures counted; BadCode stays
//     counted and waits TarpitBase × 2^(n-1) as a failed login does.
//  4. Audit: one record (Result "ok", "bad-code" or "rate-limited", with
//     a.Mechanism), which the user sees in the account's activity.
//
// a.Secret is not used. A non-nil error (counters or check failed) means
// no decision was made.
func (g *Guard) SecondFactor(ctx context.Context, a Attempt, check func(context.Context) (bool, error)) (Result, error) {
	if g.Counters == nil {
		return "", errors.New("authn: Guard needs Counters")
	}
	start := g.now()
	user, err := g.normalize(a.Username)
	if err != nil {
		return "", fmt.Errorf("second factor: %w", err)
	}
	res, delay, err := g.secondFactor(ctx, a, user, check)
	g.sleep(ctx, delay)
	result := string(res)
	if err != nil {
		result = AuditAuthError
	}
	d := Decision{Result: res, Username: user}
	g.Audit.Record(ctx, auditRecord(a, d, result, start, g.now().Sub(start)))
	return res, err
}

func (g *Guard) secondFactor(ctx context.Context, a Attempt, user string, check func(context.Context) (bool, error)) (Result, time.Duration, error) {
	keys := keysFor(user, sourceOf(a.RemoteIP))
	trusted := g.limits().trusted(a.RemoteIP)
	if trusted {
		keys = limitKeys{secondFactor: keys.secondFactor}
	}
	r, err := g.reserve(ctx, keys, false, true)
	if err != nil {
		return "", 0, fmt.Errorf("second factor: %w", err)
	}
	if limit := r.refused(); limit != "" {
		o := g.refuse(ctx, r, a, user, limit)
		return o.d.Result, o.delay, nil
	}
	ok, err := check(ctx)
	switch {
	case err != nil:
		r.giveBack(ctx)
		return "", 0, fmt.Errorf("second factor: %w", err)
	case ok:
		r.succeeded(ctx, false)
		return OK, 0, nil
	}
	r.failed(ctx)
	if trusted {
		return BadCode, 0, nil
	}
	return BadCode, r.delay(true), nil
}
