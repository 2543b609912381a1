package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store/bolt"
)

func cmdServe(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags("serve")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("serve: unexpected argument %q", pos[0])
	}
	cfg, err := loadConfig(*cfgPath)
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
type listening struct{ IMAP, IMAPS net.Addr }

// serve runs passgate with cfg until ctx is done, then shuts down within
// cfg.Limits.ShutdownGrace. ready, if not nil, is called once every listener
// accepts.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(listening)) error {
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer db.Close()
	v := &authn.Verifier{Store: db, Params: argonParams(cfg), Logger: log}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := proxy.NewRegistry(log)
	events, err := db.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("subscribe to revocations: %w", err)
	}
	go reg.Run(ctx, events)

	srv := newIMAPServer(cfg, v, reg, log)
	var l listening
	errc := make(chan error, 2)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	if cfg.IMAP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.IMAP.Listen)
		if err != nil {
			return fmt.Errorf("imap.listen: %w", err)
		}
		lns, l.IMAP = append(lns, ln), ln.Addr()
		go func() { errc <- srv.Serve(ln) }()
	}
	if cfg.IMAP.ListenTLS != "" {
		ln, err := net.Listen("tcp", cfg.IMAP.ListenTLS)
		if err != nil {
			return fmt.Errorf("imap.listen_tls: %w", err)
		}
		lns, l.IMAPS = append(lns, ln), ln.Addr()
		go func() { errc <- srv.ServeTLS(ln) }()
	}
	ctl, err := listenControl(cfg.Control.Socket, &localOps{st: db, v: v}, log)
	if err != nil {
		return err
	}
	defer ctl.Close()
	log.Info("passgate serving", "imap", addrString(l.IMAP), "imaps", addrString(l.IMAPS),
		"upstream", cfg.IMAP.Upstream.Address, "login", cfg.IMAP.Upstream.Login, "store", cfg.Store.Path)
	if ready != nil {
		ready(l)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("imap listener failed", "err", err)
			return err
		}
	}
	log.Info("shutting down", "grace", cfg.Limits.ShutdownGrace.Duration, "sessions", len(reg.Sessions()))
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownGrace.Duration)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown", "err", err)
	}
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func newIMAPServer(cfg *config.Config, v *authn.Verifier, reg *proxy.Registry, log *slog.Logger) *imap.Server {
	u := cfg.IMAP.Upstream
	up := &upstream.IMAP{
		Address:      u.Address,
		TLS:          upstream.TLSMode(u.TLS),
		TLSConfig:    u.TLSConfig,
		Mode:         upstream.Mode(u.Login),
		MasterUser:   u.MasterUser,
		MasterSecret: u.MasterSecret,
		Separator:    u.MasterSeparator,
		SendID:       u.SendID,
		DialTimeout:  u.DialTimeout.Duration,
		LoginTimeout: u.LoginTimeout.Duration,
		Logger:       log,
	}
	return &imap.Server{
		Auth:            v,
		Upstream:        up,
		Sessions:        reg,
		TLSConfig:       cfg.TLS.Config,
		AllowCleartext:  cfg.IMAP.AllowCleartext,
		Passthrough:     u.Login == config.LoginPassthrough,
		MFAMessage:      cfg.MFAText(),
		MaxFailedLogins: cfg.Limits.MaxFailedLogins,
		ReadTimeout:     cfg.Limits.PreauthTimeout.Duration,
		MaxLine:         cfg.Limits.MaxLine,
		MaxLiteral:      cfg.Limits.MaxLiteral,
		IdleTimeout:     cfg.Limits.IdleTimeout.Duration,
		Logger:          log,
	}
}

func cmdCheckConfig(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags("check-config")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: configuration is valid\n", *cfgPath)
	up := newIMAPServer(cfg, nil, nil, slog.New(slog.DiscardHandler)).Upstream.(*upstream.IMAP)
	if err := up.Check(ctx); err != nil {
		return fmt.Errorf("imap.upstream %s: %w", cfg.IMAP.Upstream.Address, err)
	}
	fmt.Fprintf(e.stdout, "imap.upstream %s: reachable, greets\n", cfg.IMAP.Upstream.Address)
	return nil
}
