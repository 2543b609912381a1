package config

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"time"
)

// Upstream defaults.
const (
	defaultMasterSeparator = "*"
	defaultDialTimeout     = 10 * time.Second
	defaultLoginTimeout    = 30 * time.Second
)

// resolve validates the upstream section at prefix (e.g. "imap.upstream"),
// fills its defaults, reads its master secret and CA file, and builds
// TLSConfig. Every protocol section with an upstream calls it with its own
// prefix, which also names its environment overrides (secretEnv).
func (u *Upstream) resolve(l *loader, prefix string) {
	key := func(name string) string { return prefix + "." + name }

	host := u.checkAddress(l, key("address"))
	u.resolveTLS(l, prefix, host)
	if u.Login == "" {
		u.Login = LoginMaster
	}
	if u.MasterSeparator == "" {
		u.MasterSeparator = defaultMasterSeparator
	}
	checkSeparator(l, key("master_separator"), u.MasterSeparator)
	if u.Login.NeedsMaster() {
		u.resolveMaster(l, prefix)
	}
	l.duration(key("dial_timeout"), &u.DialTimeout, defaultDialTimeout, 0)
	l.duration(key("login_timeout"), &u.LoginTimeout, defaultLoginTimeout, 0)
}

// checkSeparator validates a master user separator. Dovecot uses the first
// character of auth_master_user_separator only, and no user name may
// contain the separator (authn refuses such names), so it must be one
// character that ordinary user names do not hold.
func checkSeparator(l *loader, key, sep string) {
	switch {
	case len(sep) != 1 || !printableASCII(sep) || sep == " ":
		l.fail(key, nil, "must be one printable ASCII character other than a space, like Dovecot's auth_master_user_separator")
	case strings.ContainsAny(sep, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@-_"):
		l.fail(key, nil, "%q would refuse ordinary user names (no user name may contain the separator): use a character such as * or %%", sep)
	}
}

// checkAddress validates Address and returns its host.
func (u *Upstream) checkAddress(l *loader, key string) string {
	if u.Address == "" {
		l.fail(key, nil, "required: host:port of the upstream server")
		return ""
	}
	host, port, err := net.SplitHostPort(u.Address)
	switch {
	case err != nil:
		l.fail(key, err, "%q is not host:port: %s", u.Address, addrErr(err))
	case host == "" || port == "":
		l.fail(key, nil, "%q needs both a host and a port", u.Address)
	}
	return host
}

// resolveTLS builds TLSConfig for starttls and tls.
func (u *Upstream) resolveTLS(l *loader, prefix, host string) {
	if u.TLS == "" {
		u.TLS = TLSNone
	}
	if u.TLS == TLSNone {
		if u.CAFile != "" {
			l.fail(prefix+".ca_file", nil, "set, but %s.tls is none", prefix)
		}
		if u.ServerName != "" {
			l.fail(prefix+".server_name", nil, "set, but %s.tls is none", prefix)
		}
		return
	}
	if u.ServerName == "" {
		u.ServerName = host
	}
	cfg := &tls.Config{ServerName: u.ServerName, MinVersion: tls.VersionTLS12}
	if u.CAFile != "" {
		u.CAFile = l.path(u.CAFile)
		pem, err := readFile(u.CAFile, maxPEMFile)
		if err != nil {
			l.fail(prefix+".ca_file", err, "%v", err)
			return
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			l.fail(prefix+".ca_file", nil, "%s holds no PEM certificate", u.CAFile)
			return
		}
	}
	u.TLSConfig = cfg
}

// resolveMaster finds the master secret: an environment override first,
// then master_secret, then master_secret_file. Errors name where the secret
// came from, never what it is.
func (u *Upstream) resolveMaster(l *loader, prefix string) {
	key := func(name string) string { return prefix + "." + name }
	if u.MasterUser == "" {
		l.fail(key("master_user"), nil, "required with login = %q", u.Login)
	} else if !printableASCII(u.MasterUser) {
		l.fail(key("master_user"), nil, "must be printable ASCII")
	}
	if u.MasterSecret != "" && u.MasterSecretFile != "" {
		l.fail(key("master_secret_file"), nil, "set only one of master_secret and master_secret_file")
		return
	}
	secretKey := key("master_secret")
	for _, name := range secretEnv(prefix) {
		if v := l.env(name); v != "" {
			u.MasterSecret, u.MasterSecretFrom = v, "env "+name
			break
		}
	}
	switch {
	case u.MasterSecretFrom != "":
	case u.MasterSecret != "":
		u.MasterSecretFrom = secretKey
	case u.MasterSecretFile != "":
		secretKey = key("master_secret_file")
		u.MasterSecretFile = l.path(u.MasterSecretFile)
		b, err := readFile(u.MasterSecretFile, maxSecretFile)
		if err != nil {
			l.fail(secretKey, err, "%v", err)
			return
		}
		u.MasterSecret = strings.TrimRight(string(b), "\r\n")
		u.MasterSecretFrom = "file " + u.MasterSecretFile
		if u.MasterSecret == "" {
			l.fail(secretKey, nil, "%s is empty", u.MasterSecretFile)
			return
		}
	default:
		l.fail(secretKey, nil, "required with login = %q: set master_secret, master_secret_file or %s",
			u.Login, strings.Join(secretEnv(prefix), " or "))
		return
	}
	// The secret goes into a SASL PLAIN message (RFC 4616 §2: no NUL) or
	// an IMAP LOGIN command (RFC 3501 §9: no CR or LF in a string).
	if strings.ContainsAny(u.MasterSecret, "\x00\r\n") {
		l.fail(secretKey, nil, "the secret from %s contains a NUL or a line break", u.MasterSecretFrom)
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
