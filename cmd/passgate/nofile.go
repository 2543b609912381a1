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
	perProtocol := uint64(cfg.Limits.MaxConnections)
	if perProtocol == 0 {
		perProtocol = proxy.DefaultMaxConnections
	}
	protocols := uint64(0)
	if cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "" {
		protocols++
	}
	if cfg.SMTP.Enabled() {
		protocols++
	}
	return 2*perProtocol*protocols + 64
}

// warnOpenFiles logs a warning when the soft open-file limit (ulimit -n,
// systemd LimitNOFILE=) is below what the connection limits need: past it
// accept fails with EMFILE and clients hang instead of being told "too many
// connections".
func warnOpenFiles(cfg *config.Config, log *slog.Logger) {
	soft, ok := openFileLimit()
	if need := fdsNeeded(cfg); ok && soft < need {
		log.Warn("open-file limit below what limits.max_connections needs: raise it (ulimit -n, systemd LimitNOFILE=) or lower max_connections",
			"nofile", soft, "needed", need, "max_connections", cfg.Limits.MaxConnections)
	}
}
