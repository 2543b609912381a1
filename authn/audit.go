package authn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/passgate/passgate/store"
)

// Audit results that are not a Decision's Result.
const (
	// AuditAuthError: the store failed, no decision was made (the client
	// got a temporary failure).
	AuditAuthError = "auth-error"
	// AuditUpstreamError: authn said OK but the upstream login failed.
	AuditUpstreamError = "upstream-error"
	// AuditSessionLimit: authn said OK but the account already had its
	// maximum of live sessions (limits.max_sessions_per_user).
	AuditSessionLimit = "session-limit"
)

// maxAuditUsername bounds the username as typed in an audit record (a
// hostile client may send kilobytes).
const maxAuditUsername = 256

// Auditor writes one record per login attempt: a structured slog record
// (JSON when Log has a JSON handler) and, if Store is set, the account's
// capped list of recent attempts. A record never holds a secret:
// store.AuditRecord has no field for one.
type Auditor struct {
	// Log receives one Info record "audit" per attempt. If nil, none.
	Log *slog.Logger
	// Store keeps the recent attempts per account. If nil, none.
	Store store.AuditLog
	// Logger receives store failures (which are not fatal). If nil,
	// slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts every record.
	Metrics AuditMetrics
	// Notify, if not nil, is handed every record after it was written, so
	// that its owner can be told (package notify). It must not block: a
	// login waits for it.
	Notify AuditNotifier
}

// AuditNotifier takes audit records to tell accounts' owners about them
// (notify.Notifier implements it). Notify must return at once, queueing
// the record or dropping it visibly; it keeps no reference into rec.
type AuditNotifier interface {
	Notify(rec store.AuditRecord)
}

// AuditMetrics counts audit records (internal/metrics implements it): a
// record carries the protocol, mechanism and result of one attempt.
type AuditMetrics interface {
	Audited(rec store.AuditRecord)
}

// Record writes rec. It does not fail: a store error is logged. It uses a
// context that is not cancelled with ctx, so that an attempt whose client
// went away is still recorded.
func (au *Auditor) Record(ctx context.Context, rec store.AuditRecord) {
	if au == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if au.Metrics != nil {
		au.Metrics.Audited(rec)
	}
	if au.Log != nil && au.Log.Enabled(ctx, slog.LevelInfo) {
		r := slog.NewRecord(rec.Time, slog.LevelInfo, "audit", 0)
		r.AddAttrs(auditAttrs(rec)...)
		if err := au.Log.Handler().Handle(ctx, r); err != nil {
			au.logger().WarnContext(ctx, "audit log write failed", "err", err)
		}
	}
	if au.Store != nil {
		// A full AuditQueue has warned already.
		if err := au.Store.AppendAudit(ctx, rec); err != nil && !errors.Is(err, ErrAuditQueueFull) {
			au.logger().WarnContext(ctx, "audit store append failed",
				"user", rec.Username, "result", rec.Result, "err", err)
		}
	}
	if au.Notify != nil {
		au.Notify.Notify(rec)
	}
}

func (au *Auditor) logger() *slog.Logger {
	if au.Logger != nil {
		return au.Logger
	}
	return slog.Default()
}

// auditAttrs lists rec's fields; empty optional ones are left out.
func auditAttrs(rec store.AuditRecord) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("protocol", rec.Protocol),
		slog.String("user", rec.Username),
	}
	switch {
	case rec.Remote.Port() != 0:
		attrs = append(attrs, slog.String("remote", rec.Remote.String()))
	case rec.Remote.Addr().IsValid():
		attrs = append(attrs, slog.String("remote", rec.Remote.Addr().String()))
	}
	for _, f := range []struct{ k, v string }{
		{"tls", rec.TLS}, {"client", rec.Client}, {"mechanism", rec.Mechanism},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	attrs = append(attrs, slog.String("result", rec.Result))
	for _, f := range []struct{ k, v string }{
		{"app_password_id", rec.AppPasswordID}, {"app_password_name", rec.AppPasswordName},
		{"session", rec.SessionID}, {"actor", rec.Actor},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	if !rec.RemovalOn.IsZero() {
		attrs = append(attrs, slog.String("removal_on", rec.RemovalOn.Format(time.DateOnly)))
	}
	return append(attrs, slog.Duration("duration", rec.Duration))
}

// auditRecord builds the record of an attempt from what the Guard knows.
func auditRecord(a Attempt, d Decision, result string, start time.Time, took time.Duration) store.AuditRecord {
	user := d.Username
	if user == "" {
		user = a.Username
		if len(user) > maxAuditUsername {
			user = user[:maxAuditUsername]
		}
	}
	return store.AuditRecord{
		Time:            start,
		Protocol:        string(a.Protocol),
		Username:        user,
		Remote:          remoteOf(a),
		TLS:             a.TLS,
		Client:          a.Client,
		Mechanism:       a.Mechanism,
		Result:          result,
		AppPasswordID:   d.AppPasswordID,
		AppPasswordName: d.AppPasswordName,
		SessionID:       a.SessionID,
		Duration:        took,
	}
}
