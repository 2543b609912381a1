package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/internal/metrics"
	"github.com/passgate/passgate/internal/sdnotify"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// instrument gives every hook of c the metrics m (nil: none; a nil
// *metrics.Metrics must not become a non-nil interface).
func (c *core) instrument(m *metrics.Metrics) {
	if m == nil {
		return
	}
	c.metrics = m
	c.v.Metrics = m
	c.guard.Metrics = m
	if c.guard.Audit != nil {
		c.guard.Audit.Metrics = m
	}
	c.sessions.Metrics = m
	reg := c.sessions
	m.OpenSessions(func() map[store.Scope]int {
		n := map[store.Scope]int{}
		for _, s := range reg.Sessions() {
			n[s.Protocol]++
		}
		return n
	})
}

// instrumentFrontEnd gives an IMAP or SMTP server and its upstream the
// metrics of c, if any.
func (c *core) instrumentFrontEnd(srv frontEnd) {
	if c.metrics == nil {
		return
	}
	switch s := srv.(type) {
	case *imap.Server:
		s.Metrics = c.metrics
		if u, ok := s.Upstream.(*upstream.IMAP); ok {
			u.Metrics = c.metrics
		}
	case *smtp.Server:
		s.Metrics = c.metrics
		if u, ok := s.Upstream.(*upstream.SMTP); ok {
			u.Metrics = c.metrics
		}
	}
}

// readiness are the checks of /readyz: the store answers a read, and each
// configured upstream greets.
func readiness(cfg *config.Config, st store.Store) *metrics.Ready {
	checks := []metrics.Check{{Name: "store", Run: func(ctx context.Context) error {
		_, err := st.GetAccount(ctx, "passgate-readiness-probe")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}}}
	if cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "" {
		checks = append(checks, metrics.Check{Name: "imap_upstream", Run: cfg.IMAP.Upstream.Config().IMAP().Check})
	}
	if cfg.SMTP.Enabled() {
		checks = append(checks, metrics.Check{Name: "smtp_upstream", Run: cfg.SMTP.Upstream.Config().SMTP().Check})
	}
	return &metrics.Ready{Checks: checks}
}

// listenMetrics starts the metrics and health listener of cfg, if one is
// configured; stop shuts it down. bound is its address (nil: off).
func listenMetrics(cfg *config.Config, c *core, log *slog.Logger) (bound net.Addr, stop func(), err error) {
	if cfg.Metrics.Listen == "" || c.metrics == nil {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           c.metrics.Handler(readiness(cfg, c.st)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// notifyReady tells systemd (Type=notify) that every listener accepts.
func notifyReady(log *slog.Logger) {
	if err := sdnotify.Ready(); err != nil {
		log.Warn("systemd notify", "err", err)
	}
}
