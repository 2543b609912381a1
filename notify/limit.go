package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/passgate/passgate/store"
)

// DefaultMaxPerHour is how many notifications an account gets at most per
// hour when Notifier.MaxPerHour is zero.
const DefaultMaxPerHour = 10

// CollapseWindow is how long repeats of a drift or refusal of the same
// password and device are told once.
const CollapseWindow = time.Hour

// limitWindow is the window of the per-account limit.
const limitWindow = time.Hour

// Reasons a notification is not sent (log and metric values).
const (
	outcomeCollapsed   = "collapsed"
	outcomeRateLimited = "rate-limited"
)

// limit decides whether rec may be told now, counting it: "" if yes, else
// the reason. Device events and account changes have a budget of
// MaxPerHour each: an attacker who logs in with a stolen password from
// ever new devices uses up the first only, and cannot silence the mail
// about a change to the account (a new app password, all revoked). Counters are shared by every instance on the same store, so
// an attacker who spreads logins over instances gains nothing. A counter
// that cannot be read lets the notification through (the owner had
// better be told twice than not at all); the error is returned for the
// log.
func (n *Notifier) limit(ctx context.Context, rec store.AuditRecord) (string, error) {
	if n.Counters == nil {
		return "", nil
	}
	if events[rec.Result].collapse {
		v, err := n.Counters.Incr(ctx, collapseKey(rec), 1, CollapseWindow)
		if err != nil {
			return "", fmt.Errorf("notification limit: %w", err)
		}
		if v > 1 {
			return outcomeCollapsed, nil
		}
	}
	max := n.MaxPerHour
	if max == 0 {
		max = DefaultMaxPerHour
	}
	if max < 0 {
		return "", nil
	}
	budget := "notify:acct:"
	if events[rec.Result].device {
		budget = "notify:device:"
	}
	v, err := n.Counters.Incr(ctx, budget+rec.Username, 1, limitWindow)
	if err != nil {
		return "", fmt.Errorf("notification limit: %w", err)
	}
	if v > int64(max) {
		return outcomeRateLimited, nil
	}
	return "", nil
}

// collapseKey names the event, account, password and device of rec.
func collapseKey(rec store.AuditRecord) string {
	h := sha256.New()
	for _, s := range []string{rec.Username, rec.AppPasswordID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if d := rec.Device; d != nil {
		fmt.Fprintf(h, "%s\x00%s\x00%s", d.Client, d.TLS, d.Network)
	}
	return "notify:once:" + rec.Result + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}
