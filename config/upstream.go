package config

import (
	"errors"
	"strings"
	"time"

	"github.com/passgate/passgate/proxy/upstream"
)

// Config is the section as the upstream package takes it. The protocol
// clients are Config().IMAP() and Config().SMTP().
func (u *Upstream) Config() upstream.Config {
	return upstream.Config{
		Address:      u.Address,
		TLS:          u.TLS,
		TLSConfig:    u.TLSConfig,
		Mode:         u.Login,
		MasterUser:   u.MasterUser,
		MasterSecret: u.MasterSecret,
		Separator:    u.MasterSeparator,
		SendID:       u.SendID,
		SendProxy:    u.SendProxy,
		DialTimeout:  u.DialTimeout.Duration,
		LoginTimeout: u.LoginTimeout.Duration,
		Pool:         u.pool(),
		PoolMaxAge:   u.PoolMaxAge.Duration,
	}
}

// pool is the Pool setting, 0 when unset.
func (u *Upstream) pool() int {
	if u.Pool == nil {
		return 0
	}
	return *u.Pool
}

// resolvePool applies the pool default of an IMAP upstream (none with
// send_proxy) and refuses a pool elsewhere.
func (u *Upstream) resolvePool(l *loader, prefix string) {
	key := prefix + ".pool"
	l.duration(prefix+".pool_max_age", &u.PoolMaxAge, upstream.DefaultPoolMaxAge, time.Second)
	switch {
	case u.Pool == nil && prefix == "imap.upstream" && u.SendProxy == upstream.ProxyNone:
		n := upstream.DefaultPool
		u.Pool = &n
	case u.Pool == nil || *u.Pool == 0:
	case *u.Pool < 0:
		l.fail(key, nil, "%d is negative (0 = off)", *u.Pool)
	case prefix != "imap.upstream":
		l.fail(key, nil, "only imap.upstream pools connections")
	case u.SendProxy != upstream.ProxyNone:
		l.fail(key, nil, "cannot be used with send_proxy: the PROXY header names the client and must come before the greeting")
	}
}

// resolve fills the upstream section at prefix (e.g. "imap.upstream") with
// the upstream package's defaults, reads its master secret and CA file,
// has the protocol's client validate it (validate), and builds TLSConfig.
// Every protocol section with an upstream calls it with its own prefix,
// which also names its environment overrides (secretEnv).
func (u *Upstream) resolve(l *loader, prefix string, validate func(upstream.Config) error) {
	key := func(name string) string { return prefix + "." + name }
	if u.TLS == "" {
		u.TLS = upstream.DefaultTLS
	}
	if u.Login == "" {
		u.Login = upstream.DefaultMode
	}
	if u.MasterSeparator == "" {
		u.MasterSeparator = upstream.DefaultSeparator
	}
	l.duration(key("dial_timeout"), &u.DialTimeout, upstream.DefaultDialTimeout, 0)
	l.duration(key("login_timeout"), &u.LoginTimeout, upstream.DefaultLoginTimeout, 0)
	u.resolvePool(l, prefix)
	u.readCA(l, prefix)
	if u.Login.NeedsMaster() {
		u.resolveMaster(l, prefix)
	}
	l.upstreamProblems(prefix, validate(u.Config()))
	if u.TLS != upstream.TLSNone && !l.failed(key("address")) {
		c := u.Config()
		u.TLSConfig, _ = c.TLSClientConfig() // the address is valid
		u.ServerName = u.TLSConfig.ServerName
	}
}

// upstreamProblems reports each *upstream.FieldError of err at its key,
// unless the key or its _file twin has an error already (a missing master
// secret, reported with where it may come from).
func (l *loader) upstreamProblems(prefix string, err error) {
	joined, _ := err.(interface{ Unwrap() []error })
	if joined == nil {
		return
	}
	for _, e := range joined.Unwrap() {
		var fe *upstream.FieldError
		if !errors.As(e, &fe) {
			continue
		}
		if key := prefix + "." + fe.Field; !l.failed(key) && !l.failed(key+"_file") {
			l.fail(key, nil, "%s", fe.Msg)
		}
	}
}

// failed reports whether key has an error already.
func (l *loader) failed(key string) bool {
	for _, err := range l.errs {
		if e, ok := err.(*Error); ok && e.Key == key {
			return true
		}
	}
	return false
}

// readCA reads CAFile for starttls and tls into a TLSConfig with the
// configured ServerName; the upstream package fills in the rest.
func (u *Upstream) readCA(l *loader, prefix string) {
	if u.TLS == upstream.TLSNone {
		if u.CAFile != "" {
			l.fail(prefix+".ca_file", nil, "set, but %s.tls is none", prefix)
		}
		if u.ServerName != "" {
			l.fail(prefix+".server_name", nil, "set, but %s.tls is none", prefix)
		}
		return
	}
	cfg, ca := l.caConfig(prefix+".ca_file", u.CAFile)
	u.CAFile = ca
	if cfg != nil {
		cfg.ServerName = u.ServerName
		u.TLSConfig = cfg
	}
}

// resolveMaster finds the master secret: an environment override first,
// then master_secret, then master_secret_file. Errors name where the secret
// came from, never what it is.
func (u *Upstream) resolveMaster(l *loader, prefix string) {
	key := prefix + ".master_secret"
	envs := secretEnv(prefix)
	u.MasterSecret, u.MasterSecretFrom, u.MasterSecretFile = l.secret(key, u.MasterSecret, key+"_file", u.MasterSecretFile, envs)
	if strings.HasPrefix(u.MasterSecretFrom, "file ") {
		key += "_file"
	}
	switch {
	case l.failed(prefix + ".master_secret_file"):
	case u.MasterSecretFrom == "":
		l.fail(key, nil, "required with login = %q: set master_secret, master_secret_file or %s",
			u.Login, strings.Join(envs, " or "))
	// The secret goes into a SASL PLAIN message (RFC 4616 §2: no NUL) or
	// an IMAP LOGIN command as a quoted string (RFC 3501 §9: no CR or LF).
	case strings.ContainsAny(u.MasterSecret, "\x00\r\n"):
		l.fail(key, nil, "the secret from %s contains a NUL or a line break", u.MasterSecretFrom)
	}
}

// secretEnv lists the environment variables that override the master
// secret of the upstream at prefix, most specific first: for
// "imap.upstream", PASSGATE_IMAP_UPSTREAM_MASTER_SECRET then
// PASSGATE_UPSTREAM_MASTER_SECRET. An empty variable counts as unset.
func secretEnv(prefix string) []string {
	specific := "PASSGATE_" + strings.ToUpper(strings.ReplaceAll(prefix, ".", "_")) + "_MASTER_SECRET"
	return []string{specific, "PASSGATE_UPSTREAM_MASTER_SECRET"}
}
