package main

import (
	"log/slog"

	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/proxy"
)

// fdsNeeded is how many file descriptors cfg's connection limits can use at
// once: two per relayed session (client and upstream) up to
// limits.max_connections on each mail protocol, plus a margin for the
// listeners, the store, the portal and the control socket.
func fdsNeeded(cfg *config.Config) uint64 {
	protocols := uint64(0)
	for _, on := range []bool{cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "", cfg.SMTP.Enabled(),
		cfg.POP3.Enabled(), cfg.Sieve.Enabled()} {
		if on {
			protocols++
		}
	}
	return 2*maxConnections(cfg)*protocols + 64
}

// maxConnections is limits.max_connections, or its default.
func maxConnections(cfg *config.Config) uint64 {
	if n := cfg.Limits.MaxConnections; n > 0 {
		return uint64(n)
	}
	return proxy.DefaultMaxConnections
}

// warnOpenFiles logs a warning when the soft open-file limit (ulimit -n,
// systemd LimitNOFILE=) is below what the connection limits need: past it
// accept fails with EMFILE and clients hang instead of being told "too many
// connections".
func warnOpenFiles(cfg *config.Config, log *slog.Logger) {
	soft, ok := openFileLimit()
	if need := fdsNeeded(cfg); ok && soft < need {
		log.Warn("open-file limit below what limits.max_connections needs: raise it (ulimit -n, systemd LimitNOFILE=) or lower max_connections",
			"nofile", soft, "needed", need, "max_connections", maxConnections(cfg))
	}
}
