package config

// Metrics is the operator's HTTP listener: Prometheus metrics at /metrics,
// liveness at /healthz and readiness at /readyz (internal/metrics).
type Metrics struct {
	// Listen is the address of the listener, e.g. "127.0.0.1:9090".
	// Empty (default): no listener, and `passgate health` has nothing to
	// ask. It serves plain HTTP without authentication: bind it to
	// loopback or a private network.
	Listen string `toml:"listen"`
}

// metrics validates m.
func (l *loader) metrics(m *Metrics) {
	if m.Listen != "" {
		l.listenAddr("metrics.listen", m.Listen)
	}
}
