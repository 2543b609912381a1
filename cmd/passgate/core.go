package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/internal/metrics"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/store"
)

// core is the protocol-independent part of a running passgate: the store,
// the login decision behind its guard, the account service, and the live
// sessions.
type core struct {
	st       backend
	v        *authn.Verifier
	guard    *authn.Guard
	cache    *authn.Cache
	sessions *sessions.Registry
	metrics  *metrics.Metrics // nil without metrics.listen
	audit    *config.AuditLog

	// accounts changes accounts for the portal and the control socket.
	accounts *account.Service

	closers []func() error
}

// openCore opens the store of cfg and builds the guard around the verifier.
// stdout receives the audit log when audit.file is "-".
func openCore(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) (*core, error) {
	c := &core{}
	opened, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics.Listen != "" {
		c.metrics = metrics.New(metricsVersion())
	}
	// Every store and directory call is timed (nil metrics: none).
	c.st, c.closers = c.metrics.Store(opened.backend), append(c.closers, opened.Close)
	counters := c.metrics.Counters(opened.counters)
	// Audit appends leave the login path (one store write for many
	// logins); closed, so flushed, before the store.
	q := authn.NewAuditQueue(c.st, 0, log)
	c.st, c.closers = queuedAudit{c.st, q}, append(c.closers, q.Close)

	c.v = newVerifier(cfg, c.st, log)
	audit, err := cfg.Audit.Open(log, stdout)
	if err != nil {
		c.close()
		return nil, err
	}
	c.audit, c.closers = audit, append(c.closers, audit.Close)
	auditLog := audit.Logger
	c.accounts = newAccounts(cfg, c.st, c.v, auditLog, log)
	if g := cfg.Limits.GuardLimits; !g.AuthCacheTTL.Off() {
		c.cache = &authn.Cache{TTL: time.Duration(g.AuthCacheTTL), MaxEntries: g.AuthCacheEntries}
	}
	c.guard = &authn.Guard{
		Verifier: c.v,
		Counters: counters,
		Audit:    &authn.Auditor{Log: auditLog, Store: c.st, Logger: log},
		Cache:    c.cache,
		Logger:   log,
		Limits:   guardLimits(cfg),
	}
	c.sessions = &sessions.Registry{
		Store:           c.st,
		RecheckInterval: cfg.Sessions.RecheckInterval.Duration,
		Logger:          log,
		MaxPerUser:      cfg.Limits.MaxSessionsPerUser,
	}
	if c.cache != nil {
		c.sessions.Cache = c.cache
	}
	if err := c.useDirectory(cfg, log); err != nil {
		c.close()
		return nil, err
	}
	c.instrument(c.metrics)
	return c, nil
}

// newVerifier is the login decision with the configured policy.
func newVerifier(cfg *config.Config, st store.Store, log *slog.Logger) *authn.Verifier {
	v := &authn.Verifier{
		Store:                            st,
		Params:                           argonParams(cfg),
		Logger:                           log,
		AppPasswordsOnly:                 cfg.Authn.AppPasswordsOnly,
		KeepAppPasswordsOnPasswordChange: cfg.Authn.KeepAppPasswordsOnPasswordChange,
		DevicePolicy:                     cfg.Authn.DevicePolicy,
		MasterSeparators:                 masterSeparators(cfg),
	}
	directoryPolicy(cfg, v)
	return v
}

// masterSeparators are the master user separators of the configured
// upstreams: no user name may hold one (authn.Verifier.MasterSeparators).
func masterSeparators(cfg *config.Config) []string {
	var seps []string
	for _, s := range []string{cfg.IMAP.Upstream.MasterSeparator, cfg.SMTP.Upstream.MasterSeparator} {
		if s != "" && !slices.Contains(seps, s) {
			seps = append(seps, s)
		}
	}
	return seps
}

// queuedAudit is a backend whose audit appends go through an
// authn.AuditQueue; reading the audit waits for the records queued before.
type queuedAudit struct {
	backend
	q *authn.AuditQueue
}

func (b queuedAudit) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	return b.q.AppendAudit(ctx, rec)
}

func (b queuedAudit) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	return b.q.RecentAudit(ctx, username, n)
}

func (c *core) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// newAccounts is the account service of cfg's policies.
func newAccounts(cfg *config.Config, st account.Store, v *authn.Verifier, auditLog, log *slog.Logger) *account.Service {
	return &account.Service{Store: st, Verifier: v, AuditLog: auditLog, Logger: log,
		MaxAppPasswords: cfg.Authn.MaxAppPasswords,
		Retire:          account.Retirement{After: cfg.Authn.UnusedAfter.Duration, WarnBefore: cfg.Authn.UnusedWarnBefore.Duration}}
}

// guardLimits are the guard's limits of cfg.
func guardLimits(cfg *config.Config) authn.Limits {
	g := cfg.Limits.GuardLimits
	return authn.Limits{
		Window:                  g.FailWindow.Duration,
		MaxPerAddress:           g.MaxFailuresPerIP,
		MaxPerNetwork:           g.MaxFailuresPerNetwork,
		MaxPerAccount:           g.MaxFailuresPerAccount,
		MaxPerAccountAddress:    g.MaxFailuresPerAccountIP,
		MaxHashesPerAddress:     g.MaxHashesPerIP,
		MaxHashesPerNetwork:     g.MaxHashesPerNetwork,
		MaxHashesPerAccount:     g.MaxHashesPerAccount,
		MaxSecondFactorFailures: g.MaxSecondFactorFailures,
		SecondFactorWindow:      g.SecondFactorWindow.Duration,
		TarpitBase:              g.TarpitBase.Duration,
		TarpitMax:               g.TarpitMax.Duration,
		KnownAddressTTL:         g.KnownAddressTTL.Duration,
		Trusted:                 g.TrustedNetworks,
	}
}
