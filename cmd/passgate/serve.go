package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/passgate/passgate/authn/account"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/pop3"
	"github.com/passgate/passgate/proxy/sieve"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/proxy/upstream/oauth"
)

func cmdServe(ctx context.Context, e env, args []string) error {
	cfg, _, err := configOnly("serve", args)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, nil)
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// listening reports the addresses a server bound, once it accepts.
type listening struct {
	IMAP, IMAPS, SMTP, SMTPS, Portal, PortalTLS, Metrics net.Addr
	POP3, POP3S, Sieve                                   net.Addr
}

// frontEnd is a protocol server: imap.Server or smtp.Server.
type frontEnd interface {
	Serve(net.Listener) error
	ServeTLS(net.Listener) error
	Shutdown(context.Context) error
}

// listener is one configured listening address and the server behind it.
type listener struct {
	key, addr string // config key and address; addr "" = off
	srv       frontEnd
	implicit  bool // implicit TLS
	bound     *net.Addr
}

// serve runs passgate with cfg until ctx is done, then shuts down within
// cfg.Limits.ShutdownGrace. ready, if not nil, is called once every listener
// accepts.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(listening)) error {
	c, err := openCore(ctx, cfg, log, os.Stdout)
	if err != nil {
		return err
	}
	defer c.close()
	warnOpenFiles(cfg, log)
	tokens, err := upstreamTokens(cfg, c, log)
	if err != nil {
		return err
	}
	stopNotifier := startNotifier(cfg, c, tokens, log)
	defer stopNotifier()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched, err := c.sessions.Watch(ctx)
	if err != nil {
		return err
	}
	defer func() { cancel(); <-watched }()
	retired := make(chan struct{})
	go func() { defer close(retired); account.RunRetirement(ctx, c.accounts, 0) }()
	defer func() { cancel(); <-retired }()

	lv := &live{log: log, started: cfg, guard: c.guard, audit: c.audit}
	cfg.TLS.Config = lv.serverTLS()
	stopHUP := reloadOnHUP(lv)
	defer stopHUP()

	var l listening
	var servers []frontEnd
	var specs []listener
	if cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "" {
		srv := newIMAPServer(cfg, c.guard, c.sessions, tokens, log)
		if u, ok := srv.Upstream.(*upstream.IMAP); ok {
			defer u.Close() // its pool of ready connections
		}
		c.instrumentFrontEnd(srv)
		lv.fronts = append(lv.fronts, liveFrontEnd{srv, srv.Limits.Conns})
		servers = append(servers, srv)
		specs = append(specs,
			listener{"imap.listen", cfg.IMAP.Listen, srv, false, &l.IMAP},
			listener{"imap.listen_tls", cfg.IMAP.ListenTLS, srv, true, &l.IMAPS})
	}
	if cfg.SMTP.Enabled() {
		srv := newSMTPServer(cfg, c.guard, c.st, c.sessions, tokens, log)
		c.instrumentFrontEnd(srv)
		lv.fronts = append(lv.fronts, liveFrontEnd{srv, srv.Limits.Conns})
		servers = append(servers, srv)
		specs = append(specs,
			listener{"smtp.listen", cfg.SMTP.Listen, srv, false, &l.SMTP},
			listener{"smtp.listen_tls", cfg.SMTP.ListenTLS, srv, true, &l.SMTPS})
	}
	if cfg.POP3.Enabled() {
		srv := newPOP3Server(cfg, c.guard, c.sessions, log)
		lv.fronts = append(lv.fronts, liveFrontEnd{srv, srv.Limits.Conns})
		servers = append(servers, srv)
		specs = append(specs,
			listener{"pop3.listen", cfg.POP3.Listen, srv, false, &l.POP3},
			listener{"pop3.listen_tls", cfg.POP3.ListenTLS, srv, true, &l.POP3S})
	}
	if cfg.Sieve.Enabled() {
		up := cfg.Sieve.Upstream.Config()
		up.Logger = log
		srv := &sieve.Server{Auth: c.guard, Upstream: up.Sieve(), Sessions: c.sessions, TLSConfig: cfg.TLS.Config,
			AllowCleartext: cfg.Sieve.AllowCleartext, MFAMessage: cfg.MFAText(), Limits: frontEndLimits(cfg),
			DeviceMessage: proxy.DeviceRefusedText(cfg.Portal.URL),
			IdleTimeout:   cfg.Limits.IdleTimeout.Duration, Logger: log}
		lv.fronts = append(lv.fronts, liveFrontEnd{srv, srv.Limits.Conns})
		servers = append(servers, srv)
		specs = append(specs, listener{"sieve.listen", cfg.Sieve.Listen, srv, false, &l.Sieve})
	}
	if cfg.Portal.Enabled() {
		srv := newPortalFrontEnd(cfg, c, log)
		lv.portalConns = srv.conns
		servers = append(servers, srv)
		specs = append(specs,
			listener{"portal.listen", cfg.Portal.Listen, srv, false, &l.Portal},
			listener{"portal.listen_tls", cfg.Portal.ListenTLS, srv, true, &l.PortalTLS})
	}
	errc := make(chan error, len(specs))
	for _, sp := range specs {
		if sp.addr == "" {
			continue
		}
		ln, err := proxy.Listen(ctx, sp.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", sp.key, err)
		}
		defer ln.Close()
		*sp.bound = ln.Addr()
		if cfg.ProxyProtocol.On(sp.key) {
			ln = &proxy.ProxyListener{Listener: ln, Trusted: cfg.ProxyProtocol.TrustedProxies, Logger: log}
		}
		go runListener(sp, ln, errc)
	}
	ctl, err := listenControl(cfg.Control.Socket, c.accounts, lv, log)
	if err != nil {
		return err
	}
	defer ctl.Close()
	var stopMetrics func()
	if l.Metrics, stopMetrics, err = listenMetrics(cfg, c, log); err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("passgate serving", "imap", addrString(l.IMAP), "imaps", addrString(l.IMAPS),
		"smtp", addrString(l.SMTP), "smtps", addrString(l.SMTPS), "portal", addrString(l.Portal),
		"portal_tls", addrString(l.PortalTLS), "metrics", addrString(l.Metrics), "pop3", addrString(l.POP3), "pop3s", addrString(l.POP3S), "sieve", addrString(l.Sieve),
		"store", cfg.Store.Backend)
	if ready != nil {
		ready(l)
	}
	notifyReady(log)

	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("listener failed", "err", err)
		return err
	}
	log.Info("shutting down", "grace", cfg.Limits.ShutdownGrace.Duration, "sessions", len(c.sessions.Sessions()))
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownGrace.Duration)
	defer scancel()
	for _, srv := range servers {
		err := srv.Shutdown(sctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
			log.Warn("shutdown", "err", err)
		}
	}
	return nil
}

// runListener serves one listener and reports an unexpected end on errc.
func runListener(sp listener, ln net.Listener, errc chan<- error) {
	serve := sp.srv.Serve
	if sp.implicit {
		serve = sp.srv.ServeTLS
	}
	if err := serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, proxy.ErrServerClosed) {
		errc <- fmt.Errorf("%s: %w", sp.key, err)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// frontEndLimits are the [limits] of every mail front-end, each with a
// connection limiter of its own: the connection limits are per protocol.
func frontEndLimits(cfg *config.Config) proxy.Limits {
	l := cfg.Limits
	return proxy.Limits{
		PreauthTimeout:  l.PreauthTimeout.Duration,
		MaxFailedLogins: l.MaxFailedLogins,
		MaxLine:         l.MaxLine,
		MaxLiteral:      l.MaxLiteral,
		Conns:           &proxy.ConnLimiter{Max: l.MaxConnections, PerIP: l.MaxConnectionsPerIP},
	}
}

func newIMAPServer(cfg *config.Config, auth proxy.Authenticator, reg proxy.Sessions, tokens *oauth.Cache, log *slog.Logger) *imap.Server {
	up := cfg.IMAP.Upstream.Config()
	up.Logger = log
	if tokens != nil {
		up.Tokens = tokens
	}
	return &imap.Server{
		Auth:           auth,
		Upstream:       up.IMAP(),
		Sessions:       reg,
		TLSConfig:      cfg.TLS.Config,
		AllowCleartext: cfg.IMAP.AllowCleartext,
		MFAMessage:     cfg.MFAText(),
		RelinkMessage:  proxy.RelinkText(cfg.Portal.URL),
		DeviceMessage:  proxy.DeviceRefusedText(cfg.Portal.URL),
		Limits:         frontEndLimits(cfg),
		IdleTimeout:    cfg.Limits.IdleTimeout.Duration,
		Logger:         log,
	}
}

func newPOP3Server(cfg *config.Config, auth proxy.Authenticator, reg proxy.Sessions, log *slog.Logger) *pop3.Server {
	up := cfg.POP3.Upstream.Config()
	up.Logger = log
	return &pop3.Server{
		Auth:           auth,
		Upstream:       up.POP3(),
		Sessions:       reg,
		TLSConfig:      cfg.TLS.Config,
		AllowCleartext: cfg.POP3.AllowCleartext,
		MFAMessage:     cfg.MFAText(),
		DeviceMessage:  proxy.DeviceRefusedText(cfg.Portal.URL),
		Limits:         frontEndLimits(cfg),
		IdleTimeout:    cfg.Limits.IdleTimeout.Duration,
		Logger:         log,
	}
}
