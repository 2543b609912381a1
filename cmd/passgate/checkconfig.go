package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy/upstream"
)

// checkConfigPath is the file check-config reads: --config FILE or one
// positional FILE (not both, unless they name the same file).
func checkConfigPath(args []string) (string, error) {
	fs, cfgPath := newFlags("check-config")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", err
	}
	switch {
	case len(pos) > 1:
		return "", usagef("check-config: want at most one FILE, got %d arguments", len(pos))
	case len(pos) == 0:
		return *cfgPath, nil
	}
	if flagSet(fs, "config") && *cfgPath != pos[0] {
		return "", usagef("check-config: --config %s and FILE %s name two files", *cfgPath, pos[0])
	}
	return pos[0], nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func cmdCheckConfig(ctx context.Context, e env, args []string) error {
	cfgPath, err := checkConfigPath(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: configuration is valid\n", cfgPath)
	if err := checkDirectory(ctx, e, cfg); err != nil {
		return err
	}
	if cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "" {
		u := cfg.IMAP.Upstream.Config().IMAP()
		err := checkUpstream(ctx, e, "imap.upstream", &cfg.IMAP.Upstream, u.Check, func(ctx context.Context, l upstream.Login) error {
			c, err := u.Login(ctx, l)
			if err == nil {
				c.Conn.Close()
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if cfg.SMTP.Enabled() {
		u := cfg.SMTP.Upstream.Config().SMTP()
		err := checkUpstream(ctx, e, "smtp.upstream", &cfg.SMTP.Upstream, u.Check, func(ctx context.Context, l upstream.Login) error {
			c, err := u.Login(ctx, l)
			if err == nil {
				c.Quit(time.Second)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkUpstream checks that the upstream at key greets and, for the login
// modes with a master user, that the master login works, as probe_user; it
// prints what it checked and what it could not.
func checkUpstream(ctx context.Context, e env, key string, u *config.Upstream,
	greets func(context.Context) error, login func(context.Context, upstream.Login) error) error {
	if err := greets(ctx); err != nil {
		return fmt.Errorf("%s %s: %w", key, u.Address, err)
	}
	fmt.Fprintf(e.stdout, "%s %s: reachable, greets\n", key, u.Address)
	switch {
	case !u.Login.NeedsMaster():
		return nil
	case u.ProbeUser == "":
		fmt.Fprintf(e.stdout, "%s %s: master login NOT checked: set %s.probe_user to a user that exists upstream\n",
			key, u.Address, key)
		return nil
	}
	err := login(ctx, upstream.Login{Username: u.ProbeUser})
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%s %s: master login as %s (%s.probe_user): %w; %s", key, u.Address, u.ProbeUser, key, err, refused.Hint())
	case err != nil:
		return fmt.Errorf("%s %s: master login as %s: %w", key, u.Address, u.ProbeUser, err)
	}
	fmt.Fprintf(e.stdout, "%s %s: master login as %s works\n", key, u.Address, u.ProbeUser)
	return nil
}
