// Package metrics is passgate's Prometheus instrumentation: one Metrics
// value implements the small hook interfaces that authn, proxy,
// proxy/sessions and proxy/upstream declare, and serves what it counted,
// with liveness and readiness, on the operator's HTTP listener:
//
//	m := metrics.New(version)
//	guard.Metrics, verifier.Metrics, registry.Metrics = m, m, m
//	srv := &http.Server{Handler: m.Handler(ready)}
//
// No label holds a user name or an address: every label value comes from
// a small fixed set (protocol, mechanism, result, limit, direction, kind).
package metrics

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// Metrics counts what passgate does. Build it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	logins         *prometheus.CounterVec
	hash           prometheus.Histogram
	cacheHits      prometheus.Counter
	blocks         *prometheus.CounterVec
	tarpit         prometheus.Histogram
	sessionsEnded  *prometheus.CounterVec
	relayed        *prometheus.CounterVec
	upstreamLogin  *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	ready          *prometheus.GaugeVec
	notified       *prometheus.CounterVec
	devices        *prometheus.CounterVec

	storeDuration     *prometheus.HistogramVec
	storeErrors       *prometheus.CounterVec
	directoryDuration *prometheus.HistogramVec
	directoryErrors   *prometheus.CounterVec
}

var (
	_ authn.HashMetrics  = (*Metrics)(nil)
	_ authn.GuardMetrics = (*Metrics)(nil)
	_ authn.AuditMetrics = (*Metrics)(nil)
	_ sessions.Metrics   = (*Metrics)(nil)
	_ upstream.Metrics   = (*Metrics)(nil)
	_ proxy.RelayMetrics = (*Metrics)(nil)
	_ notify.Metrics     = (*Metrics)(nil)
)

// New registers passgate's metrics, the Go runtime's and the process's, and
// passgate_build_info with version.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		logins: f.counterVec("passgate_logins_total",
			"Login attempts decided by the guard (IMAP, SMTP, portal), and refusals after an OK decision (upstream-error, session-limit), by protocol, mechanism and audit result.",
			"protocol", "mechanism", "result"),
		hash: f.histogram("passgate_argon2id_duration_seconds",
			"Duration of each argon2id evaluation (app passwords, primary passwords, dummy hashes); its _count is the number of verifications.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
		cacheHits: f.counter("passgate_auth_cache_hits_total",
			"Logins answered from the verified-credential cache, without argon2id."),
		blocks: f.counterVec("passgate_guard_blocks_total",
			"Login attempts refused unverified by a brute-force limit, by the limit that refused them.",
			"limit"),
		tarpit: f.histogram("passgate_tarpit_delay_seconds",
			"Delays imposed before answering a failed or blocked login.",
			[]float64{.1, .25, .5, 1, 2, 4, 8, 16, 32, 64}),
		sessionsEnded: f.counterVec("passgate_sessions_ended_total",
			"Relayed sessions ended by passgate because their credential stopped holding, by protocol and by what found it (event, reconcile, expiry).",
			"protocol", "by"),
		relayed: f.counterVec("passgate_relayed_bytes_total",
			"Bytes relayed after login, by protocol and direction (client_to_upstream, upstream_to_client).",
			"protocol", "direction"),
		upstreamLogin: f.histogramVec("passgate_upstream_login_duration_seconds",
			"Duration of upstream logins (connect, TLS, greeting, login), successful or not, by protocol.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "protocol"),
		upstreamErrors: f.counterVec("passgate_upstream_login_errors_total",
			"Failed upstream logins by protocol and kind (refused, timeout, unavailable, other).",
			"protocol", "kind"),
		devices: f.counterVec("passgate_device_events_total",
			"First-use binding records written next to a login's own (first use, drift allowed by the notify policy), and devices accepted by their owner; refusals for drift are logins with result device-refused.",
			"event"),
		ready: f.gaugeVec("passgate_ready",
			"Result of the last readiness probe of each dependency (store, imap_upstream, smtp_upstream): 1 reachable, 0 not.",
			"check"),
		notified: f.counterVec("passgate_notifications_total",
			"Notifications to accounts' owners by event (audit result) and outcome (mail-sent, mail-failed, webhook-sent, webhook-failed, no-address, rate-limited, collapsed, dropped).",
			"event", "outcome"),
		storeDuration: f.histogramVec("passgate_store_call_duration_seconds",
			"Duration of each call to the store (bbolt or Redis), answered or failed, by operation.",
			[]float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 2.5}, "operation"),
		storeErrors: f.counterVec("passgate_store_errors_total",
			"Store calls that failed (not-found and already-exists answers excluded), by operation.",
			"operation"),
		directoryDuration: f.histogramVec("passgate_directory_call_duration_seconds",
			"Duration of each call to the user directory (LDAP, Dovecot auth, IMAP login), by operation (lookup, authenticate).",
			[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "operation"),
		directoryErrors: f.counterVec("passgate_directory_errors_total",
			"Directory calls that failed (unreachable, timeout, unexpected reply; unknown user, wrong password and disabled excluded), by operation.",
			"operation"),
	}
	build := f.gaugeVec("passgate_build_info", "passgate's version and the Go version it was built with; always 1.",
		"version", "goversion")
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build.WithLabelValues(version, goVersion).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics live, for collectors of the caller's
// (OpenSessions).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Notified counts one notification's outcome (notify.Metrics).
func (m *Metrics) Notified(event, outcome string) {
	m.notified.WithLabelValues(bounded(event), bounded(outcome)).Inc()
}

// Audited counts one audit record (authn.AuditMetrics).
func (m *Metrics) Audited(rec store.AuditRecord) {
	if deviceEvents[rec.Result] {
		m.devices.WithLabelValues(rec.Result).Inc()
		return
	}
	m.logins.WithLabelValues(bounded(rec.Protocol), bounded(rec.Mechanism), bounded(rec.Result)).Inc()
}

// deviceEvents are the audit results that annotate a login already counted
// (or an owner's decision), not attempts of their own.
var deviceEvents = map[string]bool{
	authn.AuditDeviceFirstUse: true, authn.AuditDeviceDrift: true, account.ResultDeviceAccepted: true,
}

// Hashed observes one argon2id evaluation (authn.HashMetrics).
func (m *Metrics) Hashed(d time.Duration) { m.hash.Observe(d.Seconds()) }

// CacheHit counts a login answered from the cache (authn.GuardMetrics).
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// Blocked counts an attempt refused by limit (authn.GuardMetrics).
func (m *Metrics) Blocked(limit string) { m.blocks.WithLabelValues(bounded(limit)).Inc() }

// Tarpit observes a delay before a reply (authn.GuardMetrics).
func (m *Metrics) Tarpit(d time.Duration) { m.tarpit.Observe(d.Seconds()) }

// SessionEnded counts a session the registry ended (sessions.Metrics).
func (m *Metrics) SessionEnded(p store.Scope, by string) {
	m.sessionsEnded.WithLabelValues(string(p), by).Inc()
}

// Relayed counts n bytes relayed (proxy.RelayMetrics).
func (m *Metrics) Relayed(p store.Scope, fromClient bool, n int64) {
	dir := "upstream_to_client"
	if fromClient {
		dir = "client_to_upstream"
	}
	m.relayed.WithLabelValues(string(p), dir).Add(float64(n))
}

// UpstreamLogin observes one upstream login (upstream.Metrics).
func (m *Metrics) UpstreamLogin(protocol string, d time.Duration, err error) {
	p := strings.ToLower(protocol)
	m.upstreamLogin.WithLabelValues(p).Observe(d.Seconds())
	if err != nil {
		m.upstreamErrors.WithLabelValues(p, errorKind(err)).Inc()
	}
}

// errorKind sorts an upstream login error into a label value.
func errorKind(err error) string {
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &refused):
		return "refused"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, upstream.ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// bounded keeps a label value from the fixed vocabulary passgate uses
// (short, lower-case words and dashes); anything else, such as a
// mechanism name a client made up, is "other".
func bounded(v string) string {
	if v == "" {
		return "none"
	}
	if len(v) > 32 {
		return "other"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "other"
		}
	}
	return strings.ToLower(v)
}

// OpenSessions registers passgate_sessions_open, read from count at each
// scrape (the session registry knows, nothing is double-booked).
func (m *Metrics) OpenSessions(count func() map[store.Scope]int) {
	m.reg.MustRegister(&openSessions{count: count, desc: prometheus.NewDesc("passgate_sessions_open",
		"Relayed sessions open now, by protocol.", []string{"protocol"}, nil)})
}

type openSessions struct {
	count func() map[store.Scope]int
	desc  *prometheus.Desc
}

func (o *openSessions) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *openSessions) Collect(ch chan<- prometheus.Metric) {
	counts := o.count()
	for _, p := range []store.Scope{store.ScopeIMAP, store.ScopeSMTP} {
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(counts[p]), string(p))
	}
}
