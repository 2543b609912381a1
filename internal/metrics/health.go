package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one dependency of readiness: Run returns nil when it answers.
type Check struct {
	Name string // label value of passgate_ready, e.g. "store"
	Run  func(ctx context.Context) error
}

// Default readiness probe settings.
const (
	DefaultProbeTTL     = 5 * time.Second
	DefaultProbeTimeout = 3 * time.Second
)

// Ready answers /readyz from a probe of every Check, run at most once per
// TTL whatever the number of requests (a load balancer may ask every
// second), all checks in parallel.
type Ready struct {
	Checks []Check
	// TTL is how long a probe's result is reused. Zero: DefaultProbeTTL.
	TTL time.Duration
	// Timeout bounds each check. Zero: DefaultProbeTimeout.
	Timeout time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time

	mu     sync.Mutex // held during a probe: concurrent requests wait for it
	at     time.Time
	failed []string // "name: error" of the last probe
	probes int
}

// Probe returns the failures of the checks, from the last probe if it is
// younger than TTL. m, if not nil, gets passgate_ready of each check.
func (r *Ready) Probe(ctx context.Context, m *Metrics) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.probes > 0 && now.Sub(r.at) < or(r.TTL, DefaultProbeTTL) {
		return r.failed
	}
	errs := make([]error, len(r.Checks))
	var wg sync.WaitGroup
	for i, c := range r.Checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, or(r.Timeout, DefaultProbeTimeout))
			defer cancel()
			errs[i] = c.Run(cctx)
		})
	}
	wg.Wait()
	r.failed = nil
	for i, c := range r.Checks {
		up := 1.0
		if errs[i] != nil {
			up = 0
			r.failed = append(r.failed, fmt.Sprintf("%s: %v", c.Name, errs[i]))
		}
		if m != nil {
			m.ready.WithLabelValues(c.Name).Set(up)
		}
	}
	r.at, r.probes = now, r.probes+1
	return r.failed
}

// Probes is the number of probes run so far (tests count them).
func (r *Ready) Probes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.probes
}

func (r *Ready) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Handler serves /metrics (Prometheus text or OpenMetrics), /healthz
// (200 "ok" while the process serves) and /readyz (200 "ready", or 503 with
// one line per failed check; ready may be nil: always ready).
func (m *Metrics) Handler(ready *Ready) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var failed []string
		if ready != nil {
			failed = ready.Probe(r.Context(), m)
		}
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			fmt.Fprintln(w, strings.Join(failed, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
