package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

// core is the protocol-independent part of a running passgate: the store,
// the login decision behind its guard, and the live sessions.
type core struct {
	st    backend
	v     *authn.Verifier
	guard *authn.Guard
	cache *authn.Cache
	reg   *proxy.Registry

	closers []func() error
}

// openCore opens the store of cfg and builds the guard around the verifier.
// stdout receives the audit log when audit.file is "-".
func openCore(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) (*core, error) {
	c := &core{}
	opened, err := openStore(ctx, cfg, log, c.eventsLost)
	if err != nil {
		return nil, err
	}
	c.st, c.closers = opened.backend, append(c.closers, opened.Close)
	counters := opened.counters

	c.v = newVerifier(cfg, c.st, log)
	auditLog, closeAudit, err := cfg.Audit.Logger(log, stdout)
	if err != nil {
		c.close()
		return nil, err
	}
	c.closers = append(c.closers, closeAudit)
	g := cfg.Limits.GuardLimits
	if ttl := g.AuthCacheTTL; ttl > 0 {
		c.cache = &authn.Cache{TTL: time.Duration(ttl), MaxEntries: g.AuthCacheEntries}
	}
	c.guard = &authn.Guard{
		Verifier: c.v,
		Counters: counters,
		Audit:    &authn.Auditor{Log: auditLog, Store: c.st, Logger: log},
		Cache:    c.cache,
		Logger:   log,
		Limits: authn.Limits{
			Window:               g.FailWindow.Duration,
			MaxPerAddress:        g.MaxFailuresPerIP,
			MaxPerNetwork:        g.MaxFailuresPerNetwork,
			MaxPerAccount:        g.MaxFailuresPerAccount,
			MaxPerAccountAddress: g.MaxFailuresPerAccountIP,
			TarpitBase:           g.TarpitBase.Duration,
			TarpitMax:            g.TarpitMax.Duration,
			KnownAddressTTL:      g.KnownAddressTTL.Duration,
			Trusted:              g.TrustedNetworks,
		},
	}
	c.reg = proxy.NewRegistry(log)
	return c, nil
}

// newVerifier is the login decision with the configured policy.
func newVerifier(cfg *config.Config, st store.Store, log *slog.Logger) *authn.Verifier {
	return &authn.Verifier{
		Store:                            st,
		Params:                           argonParams(cfg),
		Logger:                           log,
		AppPasswordsOnly:                 cfg.Authn.AppPasswordsOnly,
		KeepAppPasswordsOnPasswordChange: cfg.Authn.KeepAppPasswordsOnPasswordChange,
		MasterSeparators:                 masterSeparators(cfg),
	}
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

// watch ends live sessions and drops cached logins on every revocation
// event until ctx is done.
func (c *core) watch(ctx context.Context) error {
	events, err := c.st.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("subscribe to revocations: %w", err)
	}
	go func() {
		for ev := range events {
			c.reg.End(ev)
			if c.cache != nil {
				c.cache.Drop(ev)
			}
		}
	}()
	return nil
}

// eventsLost is called when revocation events may have been missed (a
// Redis reconnect or failover): cached logins can no longer be trusted.
// Live sessions are not ended: a missed revocation ends them at the
// latest when the client logs in again.
func (c *core) eventsLost() {
	if c.cache != nil {
		c.cache.Clear()
	}
}

func (c *core) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}
