package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
	"github.com/passgate/passgate/store/redis"
)

// backend is what a running passgate needs of its store.
type backend interface {
	store.Store
	store.AuditLog
	store.KV
}

// openedStore is an open backend with the counters that go with it:
// in-memory beside bolt (one instance), in Redis beside Redis (shared).
type openedStore struct {
	backend
	counters store.Counters
}

// openStore opens the store that cfg selects.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (openedStore, error) {
	if cfg.Store.Backend == config.StoreRedis {
		return openRedis(ctx, cfg.Store.Redis, log)
	}
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{Logger: log})
	if err != nil {
		return openedStore{}, fmt.Errorf("open store: %w", err)
	}
	return openedStore{backend: db, counters: &memcount.Counters{}}, nil
}

func openRedis(ctx context.Context, r config.Redis, log *slog.Logger) (openedStore, error) {
	// go-redis's own messages (a failed dial during an outage) go to our
	// log at debug level, not to stderr.
	redis.SetLibraryLogger(log)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := redis.Open(ctx, redisOptions(r, log))
	if err != nil {
		return openedStore{}, fmt.Errorf("open store (redis): %w", err)
	}
	return openedStore{backend: st, counters: st}, nil
}

func redisOptions(r config.Redis, log *slog.Logger) redis.Options {
	return redis.Options{
		URL:        r.URL,
		Addrs:      r.Addresses,
		MasterName: r.MasterName,
		Cluster:    r.Cluster,
		Username:   r.Username,
		Password:   r.Password,
		TLSConfig:  r.TLSConfig,
		KeyPrefix:  r.KeyPrefix,
		Timeout:    r.Timeout.Duration,
		Logger:     log,
	}
}

// isLocked reports a bolt file held by a running server.
func isLocked(err error) bool { return errors.Is(err, bolt.ErrLocked) }
