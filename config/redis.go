package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Redis locates the Redis that several passgate instances share
// ([store.redis], used with store.backend = "redis"). Exactly one of URL
// and Addresses is required then. Sentinel: Addresses + MasterName.
// Cluster: two or more Addresses, or one with Cluster.
type Redis struct {
	// URL is redis://[user[:password]@]host[:port][/db] (port 6379 by
	// default), or rediss:// for TLS. Query parameters are refused: use
	// the keys below.
	URL string `toml:"url"`
	// Addresses are host:port of the Sentinels (with MasterName) or of
	// Cluster nodes (seeds), or of one standalone server.
	Addresses []string `toml:"addresses"`
	// MasterName is the Sentinel master name. Requires Addresses.
	MasterName string `toml:"master_name"`
	// Cluster selects Cluster mode with a single address (a cloud
	// configuration endpoint). Default false; several Addresses without
	// MasterName are always a Cluster.
	Cluster bool `toml:"cluster"`
	// Username is the ACL user. Default none (the "default" user). Not
	// together with a user in URL; after Parse it holds the effective
	// user, from either.
	Username string `toml:"username"`
	// Password authenticates. After Parse it holds the effective password
	// whatever its source: the environment (PASSGATE_STORE_REDIS_PASSWORD,
	// which wins), this key, PasswordFile, or the URL. At most one of the
	// last three. Never printed.
	Password string `toml:"password"`
	// PasswordFile is a file holding the password; trailing CR and LF are
	// trimmed.
	PasswordFile string `toml:"password_file"`
	// TLS connects with TLS. Default false; a rediss:// URL turns it on.
	TLS bool `toml:"tls"`
	// CAFile is a PEM bundle of the CAs that verify Redis's certificate.
	// Empty: the system roots. Only with TLS.
	CAFile string `toml:"ca_file"`
	// KeyPrefix starts every Redis key and the events channel. Default
	// "passgate". Letters, digits and ". _ - : /" only.
	KeyPrefix string `toml:"key_prefix"`
	// Timeout bounds each connect, read and write; a call gives up after
	// 1.5 × Timeout, so a dead Redis fails logins quickly. Default 1s; at
	// least 10ms.
	Timeout Duration `toml:"timeout"`

	// TLSConfig is built at load when TLS is on: RootCAs from CAFile (nil:
	// system roots), MinVersion TLS 1.2; the server name is each node's
	// host. Nil otherwise.
	TLSConfig *tls.Config `toml:"-"`
	// PasswordFrom says where Password came from, for humans:
	// "store.redis.password", "file /run/secrets/x", "store.redis.url" or
	// "env PASSGATE_STORE_REDIS_PASSWORD". Empty when there is none.
	PasswordFrom string `toml:"-"`
}

// StoreBackend selects the store: "bolt" or "redis".
type StoreBackend string

// Store backends.
const (
	StoreBolt  StoreBackend = "bolt"  // one bbolt file, one instance
	StoreRedis StoreBackend = "redis" // one Redis shared by many instances
)

var storeBackends = []string{string(StoreBolt), string(StoreRedis)}

// UnmarshalText accepts bolt or redis.
func (b *StoreBackend) UnmarshalText(text []byte) error {
	v, err := oneOf(string(text), storeBackends)
	*b = StoreBackend(v)
	return err
}

// Redis defaults and limits.
const (
	defaultRedisKeyPrefix = "passgate"
	defaultRedisTimeout   = time.Second
	minRedisTimeout       = 10 * time.Millisecond
	redisPasswordEnv      = "PASSGATE_STORE_REDIS_PASSWORD"
)

// redis validates [store.redis] and fills its defaults. An address is
// required only when the redis backend is selected; whatever is set is
// checked either way.
func (l *loader) redis(r *Redis, required bool) {
	const p = "store.redis."
	if r.KeyPrefix == "" {
		r.KeyPrefix = defaultRedisKeyPrefix
	}
	if err := checkKeyPrefix(r.KeyPrefix); err != "" {
		l.fail(p+"key_prefix", nil, "%q: %s", r.KeyPrefix, err)
	}
	l.duration(p+"timeout", &r.Timeout, defaultRedisTimeout, minRedisTimeout)

	var u *url.URL
	switch {
	case r.URL != "" && len(r.Addresses) > 0:
		l.fail(p+"addresses", nil, "set only one of url and addresses")
	case r.URL != "":
		u = r.checkURL(l)
	case len(r.Addresses) > 0:
		r.checkAddresses(l)
	case required:
		l.fail("store.backend", nil, `"redis" needs store.redis.url or store.redis.addresses`)
	}
	r.resolveUser(l, u)
	r.resolvePassword(l, u)
	r.resolveTLS(l, u)
}

// checkURL validates URL and returns it parsed (nil if invalid). Messages
// show it with the password redacted.
func (r *Redis) checkURL(l *loader) *url.URL {
	const key = "store.redis.url"
	u, err := url.Parse(r.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		l.fail(key, nil, "not a URL: %v", err)
		return nil
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		l.fail(key, nil, "%s: the scheme must be redis:// or rediss://", shown)
	case u.Hostname() == "":
		l.fail(key, nil, "%s has no host", shown)
	case u.RawQuery != "" || u.Fragment != "":
		l.fail(key, nil, "%s: query parameters are not supported: use the keys of [store.redis]", shown)
	case u.Port() != "" && !validPort(u.Port()):
		l.fail(key, nil, "%s: invalid port", shown)
	case r.MasterName != "":
		l.fail("store.redis.master_name", nil, "Sentinel needs store.redis.addresses (the Sentinels), not url")
	default:
		db := strings.TrimPrefix(u.Path, "/")
		if n, err := strconv.Atoi(db); db != "" && (err != nil || n < 0) {
			l.fail(key, nil, "%s: the path must be a database number", shown)
		} else if n != 0 && r.Cluster {
			l.fail(key, nil, "%s: Cluster mode has only database 0", shown)
		}
		return u
	}
	return nil
}

// checkAddresses validates Addresses and the mode keys that go with them.
func (r *Redis) checkAddresses(l *loader) {
	const key = "store.redis.addresses"
	for _, a := range r.Addresses {
		host, port, err := net.SplitHostPort(a)
		switch {
		case err != nil:
			l.fail(key, err, "%q is not host:port: %s", a, addrErr(err))
		case host == "" || !validPort(port):
			l.fail(key, nil, "%q needs a host and a port", a)
		}
	}
	if r.MasterName != "" && r.Cluster {
		l.fail("store.redis.cluster", nil, "set only one of master_name (Sentinel) and cluster")
	}
}

// validPort reports whether s is a port number 1..65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

// resolveUser takes the user from the URL unless the key sets it.
func (r *Redis) resolveUser(l *loader, u *url.URL) {
	if u == nil || u.User == nil || u.User.Username() == "" {
		return
	}
	if r.Username != "" {
		l.fail("store.redis.username", nil, "set, but store.redis.url names a user too")
		return
	}
	r.Username = u.User.Username()
}

// resolvePassword finds the password: the environment first, then
// password, password_file or the URL. Errors name where it came from,
// never what it is.
func (r *Redis) resolvePassword(l *loader, u *url.URL) {
	const p = "store.redis."
	urlPassword, inURL := "", false
	if u != nil && u.User != nil {
		urlPassword, inURL = u.User.Password()
	}
	set := 0
	for _, ok := range []bool{r.Password != "", r.PasswordFile != "", inURL} {
		if ok {
			set++
		}
	}
	if set > 1 {
		l.fail(p+"password", nil, "set the password once: in password, password_file or url")
		return
	}
	switch {
	case l.env(redisPasswordEnv) != "":
		r.Password, r.PasswordFrom = l.env(redisPasswordEnv), "env "+redisPasswordEnv
	case r.Password != "":
		r.PasswordFrom = p + "password"
	case r.PasswordFile != "":
		r.PasswordFile = l.path(r.PasswordFile)
		b, err := readFile(r.PasswordFile, maxSecretFile)
		if err != nil {
			l.fail(p+"password_file", err, "%v", err)
			return
		}
		r.Password = strings.TrimRight(string(b), "\r\n")
		r.PasswordFrom = "file " + r.PasswordFile
		if r.Password == "" {
			l.fail(p+"password_file", nil, "%s is empty", r.PasswordFile)
		}
	case inURL:
		r.Password, r.PasswordFrom = urlPassword, p+"url"
	}
}

// resolveTLS builds TLSConfig when TLS is on (tls = true or rediss://).
func (r *Redis) resolveTLS(l *loader, u *url.URL) {
	const p = "store.redis."
	if u != nil && u.Scheme == "rediss" {
		r.TLS = true
	}
	if !r.TLS {
		if r.CAFile != "" {
			l.fail(p+"ca_file", nil, "set, but TLS is off (tls = false and url is not rediss://)")
		}
		return
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.CAFile != "" {
		r.CAFile = l.path(r.CAFile)
		pem, err := readFile(r.CAFile, maxPEMFile)
		if err != nil {
			l.fail(p+"ca_file", err, "%v", err)
			return
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			l.fail(p+"ca_file", nil, "%s holds no PEM certificate", r.CAFile)
			return
		}
	}
	r.TLSConfig = cfg
}

// checkKeyPrefix returns what is wrong with a key prefix, or "". The
// rule is store/redis's (CheckKeyPrefix): no hash-tag braces, no glob
// characters.
func checkKeyPrefix(s string) string {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("._-:/", c):
		default:
			return "only letters, digits and . _ - : / are allowed"
		}
	}
	return ""
}
