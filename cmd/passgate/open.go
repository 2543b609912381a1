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

func argonParams(cfg *config.Config) authn.Params {
	return authn.Params{MemoryKiB: cfg.Authn.ArgonMemoryKiB, Time: cfg.Authn.ArgonTime, Threads: cfg.Authn.ArgonThreads}
}

// openOps returns the management operations for the store of cfg: through a
// running server's control socket when one answers, else on the store
// itself (the bolt file, or Redis, which any number of processes share).
// close releases what was opened.
func openOps(ctx context.Context, cfg *config.Config, log *slog.Logger) (o ops, close func() error, err error) {
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
	return &localOps{st: st, v: newVerifier(cfg, st, log)}, st.Close, nil
}
