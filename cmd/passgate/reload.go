package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/internal/certfile"
	"github.com/passgate/passgate/internal/sdnotify"
	"github.com/passgate/passgate/proxy"
)

// A reload (SIGHUP, or `passgate reload` on the control socket) reads the
// configuration file again and validates it fully; a file that does not
// validate is refused and the running configuration stays. Otherwise the
// settings below change for the connections and logins that follow; open
// sessions go on untouched. Every other changed key is logged as needing a
// restart, and is not applied.
var reloadedKeys = []string{
	"tls.cert_file", "tls.key_file", "authn.mfa_message",
	"limits.preauth_timeout", "limits.max_line", "limits.max_literal", "limits.max_failed_logins",
	"limits.trusted_networks", "limits.fail_window", "limits.max_failures_per_ip",
	"limits.max_failures_per_network", "limits.max_failures_per_account",
	"limits.max_failures_per_account_ip", "limits.max_hashes_per_ip", "limits.max_hashes_per_network",
	"limits.max_hashes_per_account", "limits.max_second_factor_failures",
	"limits.second_factor_window", "limits.tarpit_base", "limits.tarpit_max", "limits.known_address_ttl",
	"limits.max_connections", "limits.max_connections_per_ip",
}

// liveFrontEnd is a front-end whose limits and MFA message a reload
// replaces (proxy.Reloadable), with its own connection limiter, which
// stays (its counts are the connections open now) and takes the new caps.
type liveFrontEnd struct {
	srv interface {
		SetLimits(proxy.Limits)
		SetMFAMessage(string)
	}
	conns *proxy.ConnLimiter
}

// live is what a reload changes in a running server.
type live struct {
	log     *slog.Logger
	started *config.Config // what the listeners, store and upstreams use
	guard   *authn.Guard
	audit   *config.AuditLog
	fronts  []liveFrontEnd
	// portalConns is the portal's connection limiter, if it runs.
	portalConns *proxy.ConnLimiter

	mu   sync.Mutex                        // one reload at a time
	cert atomic.Pointer[certfile.Reloader] // nil without TLS
}

// serverTLS is the TLS config of every listener: cfg's, with the
// certificate of the last reload's files.
func (l *live) serverTLS() *tls.Config {
	if l.started.TLS.Config == nil {
		return nil
	}
	l.started.TLS.Reloader.Logger = l.log
	l.cert.Store(l.started.TLS.Reloader)
	c := l.started.TLS.Config.Clone()
	c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return l.cert.Load().GetCertificate(h)
	}
	return c
}

// reload applies the configuration file as it is now; it returns the keys
// that changed but need a restart, or why the file was refused.
func (l *live) reload() (restart []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := sdnotify.Reloading(); err != nil {
		l.log.Warn("systemd notify", "err", err)
	}
	defer notifyReady(l.log)
	if l.started.File == "" {
		return nil, errReloadUnavailable
	}
	l.log.Info("reloading configuration", "file", l.started.File)
	next, err := config.Load(l.started.File)
	if err != nil {
		l.log.Error("reload refused: the configuration does not validate, the running one stays", "err", err)
		return nil, fmt.Errorf("reload refused, the running configuration stays: %w", err)
	}
	if next.TLS.Reloader != nil && l.cert.Load() != nil {
		next.TLS.Reloader.Logger = l.log
		l.cert.Store(next.TLS.Reloader)
	}
	for _, f := range l.fronts {
		lim := frontEndLimits(next)
		lim.Conns = f.conns
		f.conns.SetLimits(next.Limits.MaxConnections, next.Limits.MaxConnectionsPerIP)
		f.srv.SetLimits(lim)
		f.srv.SetMFAMessage(next.MFAText())
	}
	if l.portalConns != nil {
		l.portalConns.SetLimits(next.Limits.MaxConnections, next.Limits.MaxConnectionsPerIP)
	}
	l.refreshCapabilities()
	l.guard.SetLimits(guardLimits(next))
	if err := l.audit.Reopen(); err != nil {
		l.log.Error("reload: audit log not reopened, still writing to the old file", "err", err)
	}
	if (next.TLS.Config == nil) != (l.started.TLS.Config == nil) {
		restart = append(restart, "tls (turning TLS on or off)")
	}
	for _, k := range changedKeys("", reflect.ValueOf(*l.started), reflect.ValueOf(*next)) {
		if !slices.Contains(reloadedKeys, k) {
			restart = append(restart, k)
		}
	}
	if len(restart) > 0 {
		l.log.Warn("reload: changed settings need a restart and were NOT applied", "keys", strings.Join(restart, ","))
	}
	l.log.Info("configuration reloaded")
	return restart, nil
}

// capabilityRefresher is a front-end that announces its upstream's
// pre-login capabilities, learnt by a probe (imap.Server, sieve.Server).
type capabilityRefresher interface {
	RefreshCapabilities(ctx context.Context)
}

// refreshCapabilities probes the upstreams again for the front-ends that
// announce their capabilities before login: the operator may reload after
// upgrading or reconfiguring the mail server. A failed probe keeps the
// list announced so far.
func (l *live) refreshCapabilities() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range l.fronts {
		if r, ok := f.srv.(capabilityRefresher); ok {
			r.RefreshCapabilities(ctx)
		}
	}
}

// changedKeys lists the TOML keys (prefix.key) whose values differ between
// a and b, two values of one config struct type. Fields tagged "-" are
// derived at load and skipped.
func changedKeys(prefix string, a, b reflect.Value) []string {
	var keys []string
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		key := prefix
		if tag != "" {
			key = strings.TrimPrefix(prefix+"."+tag, ".")
		} else if !f.Anonymous {
			continue
		}
		fa, fb := a.Field(i), b.Field(i)
		if fa.Kind() == reflect.Struct && hasTOMLFields(fa.Type()) {
			keys = append(keys, changedKeys(key, fa, fb)...)
		} else if !sameValue(fa, fb) {
			keys = append(keys, key)
		}
	}
	return keys
}

func hasTOMLFields(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") != "" {
			return true
		}
	}
	return false
}

var tlsConfigType = reflect.TypeFor[*tls.Config]()

// sameValue is reflect.DeepEqual that ignores what a load derives and
// cannot compare: *tls.Config values and functions.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Func:
		return true
	case reflect.Pointer:
		if a.Type() == tlsConfigType || a.IsNil() || b.IsNil() {
			return a.Type() == tlsConfigType || a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map, reflect.Interface, reflect.Chan, reflect.UnsafePointer:
		if a.CanInterface() && b.CanInterface() {
			return reflect.DeepEqual(a.Interface(), b.Interface())
		}
		return a.IsNil() == b.IsNil()
	}
	return a.Equal(b)
}

// errReloadUnavailable is the answer of a server that cannot reload (an
// in-process server without a configuration file).
var errReloadUnavailable = errors.New("this server was not started from a configuration file")

// reloadOnHUP reloads l on each SIGHUP until stop is called.
func reloadOnHUP(l *live) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				_, _ = l.reload() // logged
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// cmdReload asks the server on the control socket of --config to reload
// its configuration. It fails, printing the errors, when the file does not
// validate: the server keeps its running configuration.
func cmdReload(_ context.Context, e env, args []string) error {
	cfg, path, err := configOnly("reload", args)
	if err != nil {
		if errors.As(err, new(usageError)) {
			return err
		}
		return fmt.Errorf("reload refused, the running configuration stays: %s does not validate:\n%w", path, err)
	}
	r, err := dialControl(cfg.Control.Socket)
	if err != nil {
		return fmt.Errorf("reload: no server answers on the control socket %s: %w", cfg.Control.Socket, err)
	}
	defer r.Close()
	notApplied, err := r.reload()
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "configuration reloaded")
	if len(notApplied) > 0 {
		fmt.Fprintln(e.stdout, "changed, need a restart, NOT applied:", strings.Join(notApplied, ", "))
	}
	return nil
}
