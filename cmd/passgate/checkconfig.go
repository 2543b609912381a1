package main

import (
	"context"
	"flag"
	"fmt"
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
		if err := cfg.IMAP.Upstream.Config().IMAP().Check(ctx); err != nil {
			return fmt.Errorf("imap.upstream %s: %w", cfg.IMAP.Upstream.Address, err)
		}
		fmt.Fprintf(e.stdout, "imap.upstream %s: reachable, greets\n", cfg.IMAP.Upstream.Address)
	}
	if cfg.SMTP.Enabled() {
		if err := cfg.SMTP.Upstream.Config().SMTP().Check(ctx); err != nil {
			return fmt.Errorf("smtp.upstream %s: %w", cfg.SMTP.Upstream.Address, err)
		}
		fmt.Fprintf(e.stdout, "smtp.upstream %s: reachable, greets\n", cfg.SMTP.Upstream.Address)
	}
	return nil
}
