package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/store/bolt"
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
// running server's control socket when one answers, else on the store file.
// close releases what was opened.
func openOps(cfg *config.Config, log *slog.Logger) (o ops, close func() error, err error) {
	if r, err := dialControl(cfg.Control.Socket); err == nil {
		return r, r.Close, nil
	}
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{Logger: log})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, nil, fmt.Errorf("store %s is in use by a running passgate, but its control socket %s does not answer: %w",
			cfg.Store.Path, cfg.Control.Socket, err)
	}
	if err != nil {
		return nil, nil, err
	}
	v := &authn.Verifier{Store: db, Params: argonParams(cfg), Logger: log}
	return &localOps{st: db, v: v}, db.Close, nil
}
