package config

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/proxy/upstream"
)

// Directory says where accounts and their primary passwords come from
// ([directory]); passgate keeps only app passwords, MFA enrolment,
// sessions and audit of its own.
type Directory struct {
	// Kind is "store" (default: passgate's own accounts), "ldap" (LDAP or
	// Active Directory, [directory.ldap]), "dovecot" (Dovecot's auth
	// service, [directory.dovecot]) or "imap" (a login to an IMAP server,
	// [directory.imap]).
	Kind DirectoryKind `toml:"kind"`
	// DefaultDomain is added to a login without one ("alice" becomes
	// "alice@example.org"). Default none.
	DefaultDomain string `toml:"default_domain"`
	// Cache is how long the state of an account looked up in the
	// directory (deleted? disabled?) is used for app-password logins, and
	// how soon the sessions of an account disabled there end. Missing:
	// the default of authn (60s); "off" or "0s": ask the directory at
	// every login. At least 1s. After Load, zero means the default and a
	// negative value off. Not used by kind "store".
	Cache SwitchableDuration `toml:"cache"`
	// MFA says who must use a second factor: "group" (default: those the
	// directory marks, e.g. ldap's mfa_group, and those who enrolled),
	// "all", or "enrolled" (only those who enrolled or whom an admin
	// requires it of). Empty after Load means the default.
	MFA string `toml:"mfa"`

	LDAP    LDAPDirectory    `toml:"ldap"`
	Dovecot DovecotDirectory `toml:"dovecot"`
	IMAP    IMAPDirectory    `toml:"imap"`
}

// DirectoryKind selects the directory.
type DirectoryKind string

// Directory kinds.
const (
	DirectoryStore   DirectoryKind = "store"
	DirectoryLDAP    DirectoryKind = "ldap"
	DirectoryDovecot DirectoryKind = "dovecot"
	DirectoryIMAP    DirectoryKind = "imap"
)

var directoryKinds = []string{string(DirectoryStore), string(DirectoryLDAP), string(DirectoryDovecot), string(DirectoryIMAP)}

// UnmarshalText accepts store, ldap, dovecot or imap.
func (k *DirectoryKind) UnmarshalText(text []byte) error {
	v, err := oneOf(string(text), directoryKinds)
	*k = DirectoryKind(v)
	return err
}

var mfaPolicies = []string{"group", "all", "enrolled"}

// minDirectoryCache bounds the directory requests of the sessions'
// reconciliation, which asks about every account with a live session
// once per cache period.
const minDirectoryCache = time.Second

// directory validates [directory] and the section of its kind; sections of
// other kinds must be empty.
func (l *loader) directory(d *Directory) {
	if d.Kind == "" {
		d.Kind = DirectoryStore
	}
	if d.DefaultDomain != "" {
		if err := (directory.Names{DefaultDomain: d.DefaultDomain}).Validate(); err != nil {
			l.fail("directory.default_domain", nil, "%q is not a mail domain", d.DefaultDomain)
		}
		d.DefaultDomain = strings.ToLower(d.DefaultDomain)
	}
	switch {
	case d.Cache == switchedOff:
	case d.Cache > 0 && time.Duration(d.Cache) < minDirectoryCache:
		l.fail("directory.cache", nil, "%s is below the minimum of %s (or \"off\")", time.Duration(d.Cache), minDirectoryCache)
	}
	if d.MFA != "" {
		if _, err := oneOf(d.MFA, mfaPolicies); err != nil {
			l.fail("directory.mfa", nil, "%v", err)
		}
	}
	sections := []struct {
		kind  DirectoryKind
		value any
	}{{DirectoryLDAP, &d.LDAP}, {DirectoryDovecot, &d.Dovecot}, {DirectoryIMAP, &d.IMAP}}
	for _, s := range sections {
		if s.kind != d.Kind && !reflect.ValueOf(s.value).Elem().IsZero() {
			l.fail("directory."+string(s.kind), nil, "set, but directory.kind is %q", d.Kind)
		}
	}
	switch d.Kind {
	case DirectoryLDAP:
		d.LDAP.resolve(l)
	case DirectoryDovecot:
		d.Dovecot.resolve(l)
	case DirectoryIMAP:
		d.IMAP.resolve(l)
	}
}

// attrRule parses an attribute rule (directory.AttrRule) of key.
func (l *loader) attrRule(key, text string) directory.AttrRule {
	r, err := directory.ParseAttrRule(text)
	if err != nil {
		l.fail(key, nil, "%v", err)
	}
	return r
}

// caConfig builds a client TLS configuration whose roots come from the PEM
// file caFile (empty: the system roots).
func (l *loader) caConfig(key, caFile string) (*tls.Config, string) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, ""
	}
	caFile = l.path(caFile)
	pem, err := readFile(caFile, maxPEMFile)
	if err != nil {
		l.fail(key, err, "%v", err)
		return nil, caFile
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		l.fail(key, nil, "%s holds no PEM certificate", caFile)
		return nil, caFile
	}
	return cfg, caFile
}

// secret finds a secret: the first environment variable of envs that is
// set, else the value of key, else the content of the file named by
// fileKey (trailing CR and LF trimmed). It returns the secret and where it
// came from, for humans; errors name where, never what.
func (l *loader) secret(key, value, fileKey, file string, envs []string) (secret, from, path string) {
	if value != "" && file != "" {
		l.fail(fileKey, nil, "set only one of %s and %s", lastPart(key), lastPart(fileKey))
		return "", "", file
	}
	for _, name := range envs {
		if v := l.env(name); v != "" {
			return v, "env " + name, file
		}
	}
	switch {
	case value != "":
		return value, key, ""
	case file == "":
		return "", "", ""
	}
	file = l.path(file)
	b, err := readFile(file, maxSecretFile)
	if err != nil {
		l.fail(fileKey, err, "%v", err)
		return "", "", file
	}
	secret = strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		l.fail(fileKey, nil, "%s is empty", file)
	}
	return secret, "file " + file, file
}

func lastPart(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// checkDuration rejects a negative duration (zero keeps the component's
// default).
func (l *loader) checkDuration(key string, d Duration) {
	if d.Duration < 0 {
		l.fail(key, nil, "%s is negative", d.Duration)
	}
}

// LDAPDirectory is [directory.ldap]: an LDAP server or Active Directory
// (directory/ldap). Zero values take that package's defaults or the
// preset's values; a key that is set replaces the preset's.
type LDAPDirectory struct {
	// Preset is "openldap" or "activedirectory" (or "ad"): the user
	// filter, username and address attributes and (AD) the disabled bit
	// of a typical installation. Empty: none, and user_filter is required.
	Preset string `toml:"preset"`
	// URL is ldaps://host[:636], or ldap://host[:389] (with StartTLS, or
	// on a loopback host, or with AllowPlaintext). Required.
	URL string `toml:"url"`
	// StartTLS upgrades an ldap:// connection first. Default false.
	StartTLS bool `toml:"start_tls"`
	// CAFile is a PEM bundle of the CAs that verify the server. Empty:
	// the system roots.
	CAFile string `toml:"ca_file"`
	// AllowPlaintext permits ldap:// without StartTLS to a remote host:
	// every primary password then crosses the network in clear.
	AllowPlaintext bool `toml:"allow_plaintext"`
	// BindDN is the service account that searches for users. Empty:
	// anonymous searches.
	BindDN string `toml:"bind_dn"`
	// BindPassword is the service account's password. After Parse it holds
	// the effective password, whatever its source: the environment
	// (PASSGATE_DIRECTORY_LDAP_BIND_PASSWORD, which wins), this key or
	// BindPasswordFile. Required with BindDN. Never printed.
	BindPassword string `toml:"bind_password"`
	// BindPasswordFile is a file holding it; trailing CR and LF are
	// trimmed.
	BindPasswordFile string `toml:"bind_password_file"`
	// BaseDN is where users are searched. Required.
	BaseDN string `toml:"base_dn"`
	// UserFilter finds a user: {user} is the normalised login, {local} its
	// part before '@', {domain} the part after (values escaped, RFC 4515).
	// Required without a preset.
	UserFilter string `toml:"user_filter"`
	// UsernameAttribute names the attribute whose value is the passgate
	// username (e.g. "mail"); UserFilter must find the entry by that value
	// too. Empty: the preset's, or the normalised login.
	UsernameAttribute string `toml:"username_attribute"`
	// AddressAttributes list the mail addresses (default: the preset's,
	// or ["mail"]).
	AddressAttributes []string `toml:"address_attributes"`
	// MFAGroup, AdminGroup and DisabledGroup are group DNs whose members
	// must use MFA, administer passgate, or are disabled.
	MFAGroup      string `toml:"mfa_group"`
	AdminGroup    string `toml:"admin_group"`
	DisabledGroup string `toml:"disabled_group"`
	// MFAAttribute, AdminAttribute and DisabledAttribute test an attribute
	// of the user: "name=value", "name&mask" (a bit of an integer) or
	// "name" (present and not 0/false/no).
	MFAAttribute      string `toml:"mfa_attribute"`
	AdminAttribute    string `toml:"admin_attribute"`
	DisabledAttribute string `toml:"disabled_attribute"`
	// MFAFilter, AdminFilter and DisabledFilter are LDAP filters that the
	// user's entry must match (one extra request each).
	MFAFilter      string `toml:"mfa_filter"`
	AdminFilter    string `toml:"admin_filter"`
	DisabledFilter string `toml:"disabled_filter"`
	// Membership is how groups are read: "memberof" (default: the user's
	// memberOf attribute) or "search" (a search of GroupBaseDN with
	// GroupFilter).
	Membership string `toml:"membership"`
	// GroupBaseDN is where "search" looks (default BaseDN); GroupFilter
	// finds the user's groups, {dn} being the user's DN (default:
	// groupOfNames and groupOfUniqueNames members).
	GroupBaseDN string `toml:"group_base_dn"`
	GroupFilter string `toml:"group_filter"`
	// PoolSize bounds the connections of each pool. Default 4.
	PoolSize int `toml:"pool_size"`
	// Timeout bounds connecting and each request. Default 5s.
	Timeout Duration `toml:"timeout"`

	// TLSConfig is built at load: RootCAs from CAFile (nil: system roots),
	// MinVersion TLS 1.2; the server name is the URL's host.
	TLSConfig *tls.Config `toml:"-"`
	// BindPasswordFrom says where BindPassword came from, for humans.
	BindPasswordFrom string `toml:"-"`
	// MFARule, AdminRule and DisabledRule are the parsed *Attribute keys.
	MFARule, AdminRule, DisabledRule directory.AttrRule `toml:"-"`
}

const ldapBindPasswordEnv = "PASSGATE_DIRECTORY_LDAP_BIND_PASSWORD"

var (
	ldapPresets     = []string{"openldap", "activedirectory", "ad"}
	ldapMemberships = []string{"memberof", "search"}
)

func (d *LDAPDirectory) resolve(l *loader) {
	const p = "directory.ldap."
	if d.Preset != "" {
		if _, err := oneOf(d.Preset, ldapPresets); err != nil {
			l.fail(p+"preset", nil, "%v", err)
		}
	} else if d.UserFilter == "" {
		l.fail(p+"user_filter", nil, "required without a preset: e.g. \"(&(objectClass=inetOrgPerson)(mail={user}))\"")
	}
	d.checkURL(l)
	if d.BaseDN == "" {
		l.fail(p+"base_dn", nil, "required: where the users are, e.g. \"ou=people,dc=example,dc=org\"")
	}
	if d.Membership != "" {
		if _, err := oneOf(d.Membership, ldapMemberships); err != nil {
			l.fail(p+"membership", nil, "%v", err)
		}
	}
	d.MFARule = l.attrRule(p+"mfa_attribute", d.MFAAttribute)
	d.AdminRule = l.attrRule(p+"admin_attribute", d.AdminAttribute)
	d.DisabledRule = l.attrRule(p+"disabled_attribute", d.DisabledAttribute)
	if d.PoolSize < 0 {
		l.fail(p+"pool_size", nil, "%d is negative", d.PoolSize)
	}
	l.checkDuration(p+"timeout", d.Timeout)
	d.BindPassword, d.BindPasswordFrom, d.BindPasswordFile = l.secret(p+"bind_password", d.BindPassword,
		p+"bind_password_file", d.BindPasswordFile, []string{ldapBindPasswordEnv})
	switch {
	case d.BindDN != "" && d.BindPassword == "" && d.BindPasswordFrom == "":
		l.fail(p+"bind_password", nil, "required with bind_dn: set bind_password, bind_password_file or %s", ldapBindPasswordEnv)
	case d.BindDN == "" && d.BindPasswordFrom != "" && !strings.HasPrefix(d.BindPasswordFrom, "env "):
		l.fail(p+"bind_dn", nil, "required with a bind password (without it, searches are anonymous)")
	}
}

// checkURL validates URL against StartTLS, CAFile and AllowPlaintext and
// builds TLSConfig.
func (d *LDAPDirectory) checkURL(l *loader) {
	const p = "directory.ldap."
	if d.URL == "" {
		l.fail(p+"url", nil, "required: ldaps://host or ldap://host (with start_tls)")
		return
	}
	u, err := url.Parse(d.URL)
	switch {
	case err != nil || u.Host == "":
		l.fail(p+"url", nil, "%q is not ldap://host[:port] or ldaps://host[:port]", d.URL)
		return
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		l.fail(p+"url", nil, "%q: the scheme must be ldap:// or ldaps://", d.URL)
		return
	case u.Scheme == "ldaps" && d.StartTLS:
		l.fail(p+"start_tls", nil, "is for ldap://, not ldaps://")
	}
	tlsOn := u.Scheme == "ldaps" || d.StartTLS
	switch {
	case !tlsOn && d.CAFile != "":
		l.fail(p+"ca_file", nil, "set, but %s uses no TLS (use ldaps:// or start_tls = true)", d.URL)
	case !tlsOn && !d.AllowPlaintext && !loopbackHost(u.Hostname()):
		l.fail(p+"url", nil, "%q would send every primary password in clear: use ldaps://, start_tls = true, "+
			"or allow_plaintext = true on a network you trust", d.URL)
	}
	d.TLSConfig, d.CAFile = l.caConfig(p+"ca_file", d.CAFile)
}

// DovecotDirectory is [directory.dovecot]: Dovecot's authentication
// service (directory/dovecotauth). Zero values take its defaults.
type DovecotDirectory struct {
	// AuthSocket is the auth-client socket: a UNIX socket path (relative
	// paths are relative to the configuration file; "unix:" may prefix
	// it) or host:port of an inet_listener. Required.
	AuthSocket string `toml:"auth_socket"`
	// UserdbSocket is the auth-userdb socket, the same way. Empty: users
	// cannot be looked up (no state check of app-password logins, no
	// mfa/admin/disabled fields).
	UserdbSocket string `toml:"userdb_socket"`
	// Service is the service name Dovecot sees. Default "imap".
	Service string `toml:"service"`
	// MFA, Admin and Disabled test a userdb field: "name=value",
	// "name&mask" or "name" (present and not 0/false/no).
	MFA      string `toml:"mfa"`
	Admin    string `toml:"admin"`
	Disabled string `toml:"disabled"`
	// PoolSize bounds the connections to each socket. Default 16.
	PoolSize int `toml:"pool_size"`
	// Timeout bounds connecting and each request. Default 5s.
	Timeout Duration `toml:"timeout"`

	// MFARule, AdminRule and DisabledRule are the parsed MFA, Admin and
	// Disabled.
	MFARule, AdminRule, DisabledRule directory.AttrRule `toml:"-"`
}

func (d *DovecotDirectory) resolve(l *loader) {
	const p = "directory.dovecot."
	if d.AuthSocket == "" {
		l.fail(p+"auth_socket", nil, "required: Dovecot's auth-client socket, e.g. \"/run/dovecot/auth-passgate\"")
	}
	d.AuthSocket = l.socket(p+"auth_socket", d.AuthSocket)
	d.UserdbSocket = l.socket(p+"userdb_socket", d.UserdbSocket)
	if strings.ContainsAny(d.Service, "\t\r\n\x00") {
		l.fail(p+"service", nil, "contains control characters")
	}
	d.MFARule = l.attrRule(p+"mfa", d.MFA)
	d.AdminRule = l.attrRule(p+"admin", d.Admin)
	d.DisabledRule = l.attrRule(p+"disabled", d.Disabled)
	if d.PoolSize < 0 {
		l.fail(p+"pool_size", nil, "%d is negative", d.PoolSize)
	}
	l.checkDuration(p+"timeout", d.Timeout)
}

// socket resolves a Dovecot socket: host:port stays, a path (or
// "unix:" path) becomes an absolute path.
func (l *loader) socket(key, s string) string {
	if s == "" {
		return ""
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		return l.path(path)
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if host == "" || port == "" {
			l.fail(key, nil, "%q needs a host and a port (or write a socket path)", s)
		}
		return s
	}
	return l.path(s)
}

// IMAPDirectory is [directory.imap]: primary passwords verified by a login
// to an IMAP server (directory/imapdir).
type IMAPDirectory struct {
	// Address is host:port of the server. Required.
	Address string `toml:"address"`
	// TLS is "tls", "starttls" or "none" (loopback addresses only). Empty:
	// imapdir's default, starttls.
	TLS upstream.TLSMode `toml:"tls"`
	// CAFile is a PEM bundle of the CAs that verify the server. Empty:
	// the system roots.
	CAFile string `toml:"ca_file"`
	// ServerName is the name verified in its certificate. Empty: the host
	// of Address.
	ServerName string `toml:"server_name"`
	// ForwardClientIP sends the client's address (IMAP ID
	// x-originating-ip); the server must trust passgate (Dovecot:
	// login_trusted_networks). Default false.
	ForwardClientIP bool `toml:"forward_client_ip"`
	// Timeout bounds a whole login. Default 10s.
	Timeout Duration `toml:"timeout"`

	// TLSConfig is built at load unless TLS is none: RootCAs from CAFile,
	// ServerName, MinVersion TLS 1.2.
	TLSConfig *tls.Config `toml:"-"`
}

func (d *IMAPDirectory) resolve(l *loader) {
	const p = "directory.imap."
	host := ""
	if d.Address == "" {
		l.fail(p+"address", nil, "required: host:port of the IMAP server")
	} else if h, port, err := net.SplitHostPort(d.Address); err != nil || h == "" || port == "" {
		l.fail(p+"address", nil, "%q is not host:port", d.Address)
	} else {
		host = h
	}
	l.checkDuration(p+"timeout", d.Timeout)
	if d.TLS == upstream.TLSNone {
		switch {
		case d.CAFile != "":
			l.fail(p+"ca_file", nil, "set, but directory.imap.tls is none")
		case d.ServerName != "":
			l.fail(p+"server_name", nil, "set, but directory.imap.tls is none")
		case host != "" && !loopbackHost(host):
			l.fail(p+"tls", nil, "none would send every primary password to %s in clear: only a loopback server may", host)
		}
		return
	}
	cfg, ca := l.caConfig(p+"ca_file", d.CAFile)
	d.CAFile = ca
	if cfg == nil {
		return
	}
	cfg.ServerName = d.ServerName
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	d.TLSConfig = cfg
}
