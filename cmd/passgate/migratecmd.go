package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/migrate"
	"github.com/passgate/passgate/store/redis"
)

// boltPrefix starts the --from argument.
const boltPrefix = "bolt:"

// cmdStore runs "passgate store migrate" (package store/migrate): the only store
// command so far.
func cmdStore(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "migrate" {
		return usagef("store: want migrate")
	}
	fs, cfgPath := newFlags("store migrate")
	from := fs.String("from", "", "source: bolt:PATH")
	to := fs.String("to", "", `destination: redis://... or rediss://... URL, or "config" for the [store] of --config`)
	prefix := fs.String("key-prefix", "", "Redis key prefix with a --to URL (default "+redis.DefaultKeyPrefix+")")
	audit := fs.Bool("audit", true, "copy the recent audit records too")
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("store migrate: unexpected argument %q", pos[0])
	case *from == "" || *to == "":
		return usagef("store migrate: want --from bolt:PATH and --to URL|config")
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, srcPath, err := openMigrateSource(*from, log)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, shown, err := openMigrateDest(ctx, *to, *cfgPath, *prefix, srcPath, log)
	if err != nil {
		return err
	}
	defer dst.Close()
	c, err := migrate.Run(ctx, src, dst, migrate.Options{Audit: *audit, Logger: log})
	if err != nil {
		return fmt.Errorf("store migrate to %s: %w", shown, err)
	}
	if *asJSON {
		return printJSON(e.stdout, c)
	}
	printMigrate(e.stdout, boltPrefix+srcPath, shown, c)
	return nil
}

// openMigrateSource opens the bolt file of --from, which must exist.
func openMigrateSource(from string, log *slog.Logger) (*bolt.DB, string, error) {
	path, ok := strings.CutPrefix(from, boltPrefix)
	if !ok || path == "" {
		return nil, "", usagef("store migrate: --from must be bolt:PATH, not %q", from)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("store migrate: source: %w", err) // names the path
	}
	db, err := bolt.Open(path, bolt.Options{Logger: log})
	if isLocked(err) {
		return nil, "", fmt.Errorf("store migrate: source %s is in use by a running passgate; stop it first, so that the copy is complete: %w", path, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("store migrate: source: %w", err)
	}
	return db, path, nil
}

// openMigrateDest opens the destination of --to: a Redis URL (the password
// from the URL or PASSGATE_STORE_REDIS_PASSWORD), or "config": the store
// of the configuration file. It returns the destination as it may be
// shown (no password).
func openMigrateDest(ctx context.Context, to, cfgPath, prefix, srcPath string, log *slog.Logger) (migrate.Dest, string, error) {
	if to == "config" {
		if prefix != "" {
			return nil, "", usagef("store migrate: --key-prefix goes with a --to URL; with --to config set store.redis.key_prefix")
		}
		return openConfigDest(ctx, cfgPath, srcPath, log)
	}
	u, err := url.Parse(to)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, "", usagef(`store migrate: --to must be a redis:// or rediss:// URL, or "config"`)
	}
	if prefix == "" {
		prefix = redis.DefaultKeyPrefix
	}
	opts := redis.Options{URL: to, KeyPrefix: prefix, Logger: log, Password: os.Getenv("PASSGATE_STORE_REDIS_PASSWORD")}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := redis.Open(octx, opts)
	if err != nil {
		return nil, "", fmt.Errorf("store migrate: destination: %w", err)
	}
	return st, fmt.Sprintf("%s (key prefix %q)", u.Redacted(), prefix), nil
}

// openConfigDest opens the store that [store] of the file at cfgPath
// selects.
func openConfigDest(ctx context.Context, cfgPath, srcPath string, log *slog.Logger) (migrate.Dest, string, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, "", err
	}
	shown := boltPrefix + cfg.Store.Path
	if cfg.Store.Backend == config.StoreRedis {
		shown = fmt.Sprintf("Redis of %s (key prefix %q)", cfgPath, cfg.Store.Redis.KeyPrefix)
	} else if samePath(cfg.Store.Path, srcPath) {
		return nil, "", fmt.Errorf("store migrate: the [store] of %s is the source file %s itself", cfgPath, srcPath)
	}
	opened, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, "", fmt.Errorf("store migrate: destination: %w", err)
	}
	d, ok := opened.backend.(migrate.Dest)
	if !ok {
		opened.Close()
		return nil, "", fmt.Errorf("store migrate: the %s backend cannot import a lookup key", cfg.Store.Backend)
	}
	return d, shown, nil
}

// samePath reports whether a and b name the same file (after making them
// absolute and resolving links, where that works).
func samePath(a, b string) bool {
	abs := func(p string) string {
		if q, err := filepath.Abs(p); err == nil {
			p = q
		}
		if q, err := filepath.EvalSymlinks(p); err == nil {
			p = q
		}
		return p
	}
	return abs(a) == abs(b)
}

// printMigrate prints the counts for humans.
func printMigrate(w io.Writer, from, to string, c migrate.Counts) {
	fmt.Fprintf(w, "Copied %s to %s:\n", from, to)
	key := "adopted the source's (app-password tags depend on it)"
	if c.LookupKey == migrate.KeyNotNeeded {
		key = "left alone (the source has no app passwords)"
	}
	fmt.Fprintf(w, "  lookup key     %s\n", key)
	fmt.Fprintf(w, "  accounts       %d created, %d updated, %d unchanged\n",
		c.Accounts.Created, c.Accounts.Updated, c.Accounts.Unchanged)
	fmt.Fprintf(w, "  app passwords  %d created, %d already there\n", c.AppPasswords.Created, c.AppPasswords.Present)
	if c.Audit.Off {
		fmt.Fprintln(w, "  audit records  not copied (--audit=false)")
	} else {
		fmt.Fprintf(w, "  audit records  %d copied into %d accounts, %d accounts skipped (they already had records)\n",
			c.Audit.Copied, c.Audit.Accounts, c.Audit.Skipped)
	}
}
