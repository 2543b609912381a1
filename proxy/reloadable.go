package proxy

import "sync/atomic"

// Reloadable holds the settings of a front-end that a configuration reload
// may replace while it serves: its Limits and MFA message. A server embeds
// it and reads them through LimitsOr and MFAMessageOr, so every
// connection, and every check within one, sees the latest. The zero value
// replaces nothing. It must not be copied after first use.
type Reloadable struct {
	limits atomic.Pointer[Limits]
	mfa    atomic.Pointer[string]
}

// SetLimits replaces the server's Limits. Keep Conns the server's own
// limiter: its counts are the connections open now.
func (r *Reloadable) SetLimits(l Limits) { r.limits.Store(&l) }

// SetMFAMessage replaces the server's MFA message.
func (r *Reloadable) SetMFAMessage(m string) { r.mfa.Store(&m) }

// LimitsOr is the last SetLimits, or l before any.
func (r *Reloadable) LimitsOr(l Limits) Limits {
	if p := r.limits.Load(); p != nil {
		return *p
	}
	return l
}

// MFAMessageOr is the last SetMFAMessage, or m before any.
func (r *Reloadable) MFAMessageOr(m string) string {
	if p := r.mfa.Load(); p != nil {
		return *p
	}
	return m
}
