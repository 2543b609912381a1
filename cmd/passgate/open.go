package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
)

// loadConfig loads the file named by --config.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err // config errors already name the file and key
	}
	return cfg, nil
}

// configOnly parses the arguments of a command that takes no more than
// --config, and loads that file.
func configOnly(name string, args []string) (cfg *config.Config, path string, err error) {
	fs, cfgPath := newFlags(name)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return nil, "", err
	}
	cfg, err = loadConfig(*cfgPath)
	return cfg, *cfgPath, err
}

func argonParams(cfg *config.Config) authn.Params {
	return authn.Params{MemoryKiB: cfg.Authn.ArgonMemoryKiB, Time: cfg.Authn.ArgonTime, Threads: cfg.Authn.ArgonThreads}
}

// openAccounts returns the account service for the store of cfg: through
// a running server's control socket when one answers, else on the store
// itself (the bolt file, or Redis, which any number of processes share),
// as the Unix user running this process. close releases what was opened.
func openAccounts(ctx context.Context, cfg *config.Config, log *slog.Logger) (a accounts, close func() error, err error) {
	if r, err := dialControl(cfg.Control.Socket); err == nil {
		return r, r.Close, nil
	}
	st, err := openStore(ctx, cfg, log)
	if isLocked(err) {
		return nil, nil, fmt.Errorf("store %s is in use by a running passgate, but its control socket %s does not answer: %w",
			cfg.Store.Path, cfg.Control.Socket, err)
	}
	if err != nil {
		return nil, nil, err
	}
	auditLog, closeAudit := cfg.Audit.ExistingLogger()
	svc := newAccounts(cfg, st, newVerifier(cfg, st, log), auditLog, log)
	return localAccounts{svc: svc, who: cliActor()}, func() error {
		closeAudit()
		return st.Close()
	}, nil
}
