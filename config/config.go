// Package config loads and validates passgate's TOML configuration file.
//
// One file configures one passgate process. [Load] reads it, rejects unknown
// keys, validates every value, fills the defaults of the keys config owns
// (a component's limits stay zero: the component applies its own default,
// which lives there only), resolves relative paths against the file's
// directory, reads the files it names (certificates, CA bundle, master
// secret) and builds the *tls.Config values, so that a misconfiguration
// fails at start, naming the key and line:
//
//	cfg, err := config.Load("/etc/passgate/passgate.toml")
//	if err != nil {
//		return err // e.g. "/etc/passgate/passgate.toml:7: imap.upstream.tls: "tsl" is not one of none, starttls, tls"
//	}
//
// There are no globals: the *Config value is passed down. Secrets read from
// files or the environment end up in the Config (Upstream.MasterSecret) and
// never in an error.
//
// passgate.example.toml at the root of the repository documents every key.
package config

import (
	"crypto/tls"

	"github.com/passgate/passgate/internal/certfile"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// Config is the whole configuration file. After Parse or Load every field
// holds its effective value (paths resolved), except the limits whose zero
// means a component's default (Limits, GuardLimits, Sessions).
type Config struct {
	// File is the absolute path of the file Load read ("" after Parse):
	// a reload reads it again.
	File string `toml:"-"`

	IMAP IMAP `toml:"imap"`
	SMTP SMTP `toml:"smtp"`
	// POP3 and Sieve (ManageSieve) are optional front-ends (config/pop3.go).
	POP3  POP3  `toml:"pop3"`
	Sieve Sieve `toml:"sieve"`
	// TLS is the server certificate of the STARTTLS and implicit TLS
	// listeners.
	TLS     TLS     `toml:"tls"`
	Store   Store   `toml:"store"`
	Authn   Authn   `toml:"authn"`
	Portal  Portal  `toml:"portal"`
	Limits  Limits  `toml:"limits"`
	Audit   Audit   `toml:"audit"`
	Control Control `toml:"control"`
	Log     Log     `toml:"log"`
	// Sessions tunes the reconciliation of live sessions
	// (config/sessions.go).
	Sessions Sessions `toml:"sessions"`
	// Directory is where accounts and primary passwords come from
	// (config/directory.go).
	Directory Directory `toml:"directory"`
	// OAuth is where the upstream login's OAuth 2.0 tokens come from
	// (config/oauth.go); zero: no OAuth.
	OAuth oauth.Settings `toml:"oauth"`
	// Metrics is the metrics and health listener (config/metrics.go).
	Metrics Metrics `toml:"metrics"`
	// ProxyProtocol is which listeners take PROXY protocol headers, and
	// from where (config/proxyproto.go); zero: none.
	ProxyProtocol ProxyProtocol `toml:"proxy_protocol"`
	// Notify is how accounts' owners are told what happened to their
	// credentials (config/notify.go); zero: not at all.
	Notify Notify `toml:"notify"`
}

// IMAP configures the IMAP listeners and the IMAP server behind them.
// At least one of Listen and ListenTLS must be set.
type IMAP struct {
	// Listen is the plain TCP address offering STARTTLS (RFC 3501 §6.2.1),
	// e.g. "0.0.0.0:143". Empty: no such listener.
	Listen string `toml:"listen"`
	// ListenTLS is the implicit TLS address (RFC 8314 §3.3), e.g.
	// "0.0.0.0:993". Empty: no such listener. Requires tls.cert_file.
	ListenTLS string `toml:"listen_tls"`
	// AllowCleartext lets clients LOGIN / AUTHENTICATE before TLS. Default
	// false. Only for tests and loopback; required when Listen is set and
	// no certificate is configured (clients could never log in otherwise).
	AllowCleartext bool `toml:"allow_cleartext"`
	// Upstream is the real IMAP server (Dovecot).
	Upstream Upstream `toml:"upstream"`
}

// Upstream is a mail server that passgate logs in to on behalf of its users.
// The same section type serves every protocol; its keys are validated under
// their dotted prefix ("imap.upstream").
type Upstream struct {
	// Address is host:port of the server, e.g. "127.0.0.1:143". Required
	// when the protocol has a listener.
	Address string `toml:"address"`
	// TLS is how to secure the connection: "none" (default), "starttls" or
	// "tls" (implicit).
	TLS upstream.TLSMode `toml:"tls"`
	// CAFile is a PEM bundle of the CAs that verify the upstream
	// certificate. Empty: the system roots. Only with TLS != none.
	CAFile string `toml:"ca_file"`
	// ServerName is the name verified in the upstream certificate. Empty:
	// the host part of Address. Only with TLS != none.
	ServerName string `toml:"server_name"`
	// Login is how passgate logs in (upstream.Mode): "master" (default;
	// SASL PLAIN with authzid = user, authcid = MasterUser), "login-master"
	// (LOGIN user<MasterSeparator>MasterUser with MasterSecret),
	// "passthrough" (the client's own credentials) or, for SMTP only,
	// "xclient".
	Login upstream.Mode `toml:"login"`
	// MasterUser is the upstream master user. Required for master and
	// login-master.
	MasterUser string `toml:"master_user"`
	// MasterSecret is the master user's password. After Parse it holds the
	// effective secret, whatever its source: this key, MasterSecretFile or
	// the environment (PASSGATE_IMAP_UPSTREAM_MASTER_SECRET, then
	// PASSGATE_UPSTREAM_MASTER_SECRET; an environment variable wins).
	// Required for master and login-master. Never printed.
	MasterSecret string `toml:"master_secret"`
	// MasterSecretFile is a file holding the secret; trailing CR and LF
	// are trimmed. Mutually exclusive with MasterSecret; not read when an
	// environment variable provides the secret.
	MasterSecretFile string `toml:"master_secret_file"`
	// MasterSeparator joins user and master user for login-master (Dovecot
	// auth_master_user_separator). Default "*". One character, not a
	// letter, digit or one of ".@-_"; no user name may contain it.
	MasterSeparator string `toml:"master_separator"`
	// SendID sends IMAP ID (RFC 2971) with x-originating-ip before logging
	// in, so that the upstream logs the client's address. The upstream
	// must trust passgate (Dovecot: login_trusted_networks). Default false.
	SendID bool `toml:"send_id"`
	// ProbeUser is a user that exists upstream, as whom passgate check-config
	// logs in with the master credentials (and logs out at once), so that
	// a wrong master secret shows before users are refused. Empty: the
	// master login is not checked, and check-config says so.
	ProbeUser string `toml:"probe_user"`
	// SendProxy sends a PROXY protocol header ("v1" or "v2") with the
	// client's address on each upstream connection, for servers that
	// read one (Dovecot: haproxy = yes). Default none.
	SendProxy upstream.ProxyVersion `toml:"send_proxy"`
	// DialTimeout bounds the TCP connect. Default 10s.
	DialTimeout Duration `toml:"dial_timeout"`
	// LoginTimeout bounds greeting, STARTTLS and login up to the tagged
	// OK. Default 30s.
	LoginTimeout Duration `toml:"login_timeout"`
	// Pool (IMAP only) keeps up to this many upstream connections that
	// have read the greeting and finished TLS or STARTTLS, dialled while
	// logins come, so that a login costs one round trip upstream. 0 =
	// off. Default 4 (upstream.DefaultPool), 0 with send_proxy, which
	// cannot pool: its header names the client.
	Pool *int `toml:"pool"`
	// PoolMaxAge is how long a pooled connection may wait for a login:
	// keep it below the upstream's pre-login timeout (Dovecot: 3 min).
	// Default 30s.
	PoolMaxAge Duration `toml:"pool_max_age"`

	// TLSConfig is built at load when TLS != none: RootCAs from CAFile
	// (nil: system roots), ServerName, MinVersion TLS 1.2. Nil otherwise.
	// Shared: Clone it before changing it.
	TLSConfig *tls.Config `toml:"-"`
	// MasterSecretFrom says where MasterSecret came from, for humans:
	// "imap.upstream.master_secret", "file /run/secrets/x" or
	// "env PASSGATE_IMAP_UPSTREAM_MASTER_SECRET". Empty when no secret.
	MasterSecretFrom string `toml:"-"`
}

// TLS is passgate's own server certificate.
type TLS struct {
	// CertFile is the PEM certificate chain. Empty: no TLS (then only
	// imap.listen with allow_cleartext works).
	CertFile string `toml:"cert_file"`
	// KeyFile is the PEM private key of CertFile. Required with CertFile.
	KeyFile string `toml:"key_file"`
	// Config is built at load: the key pair through Reloader, MinVersion
	// TLS 1.2. Nil when no certificate is configured.
	Config *tls.Config `toml:"-"`
	// Reloader serves Config's certificate and re-reads the files when
	// they change on disk (certbot). Nil when Config is.
	Reloader *certfile.Reloader `toml:"-"`
}

// Store locates passgate's database.
type Store struct {
	// Backend is "bolt" (default: one file, one instance) or "redis" (one
	// Redis shared by several instances; see Redis).
	Backend StoreBackend `toml:"backend"`
	// Path is the bbolt file. Default "passgate.db" next to the
	// configuration file; a relative path is relative to that directory.
	Path string `toml:"path"`
	// Redis is the Redis of backend "redis" (config/redis.go).
	Redis Redis `toml:"redis"`
}

// Authn tunes the login decision.
type Authn struct {
	// ArgonMemoryKiB is the argon2id memory cost in KiB. Default 19456
	// (19 MiB, the OWASP recommendation); at least 8 × ArgonThreads.
	ArgonMemoryKiB uint32 `toml:"argon_memory_kib"`
	// ArgonTime is the argon2id number of passes. Default 2.
	ArgonTime uint32 `toml:"argon_time"`
	// ArgonThreads is the argon2id parallelism. Default 1.
	ArgonThreads uint8 `toml:"argon_threads"`
	// MFAMessage is the text a client sees when it logs in to an MFA
	// account with the primary password; "{portal_url}" is replaced by
	// portal.url (see Config.MFAText). Printable ASCII only, because it
	// is sent in an IMAP [ALERT] and an SMTP reply. Empty: the default of
	// proxy.MFAText, "Application password required: create one at
	// {portal_url}", or "Application password required: create one in the
	// app-passwords portal" when portal.url is empty.
	MFAMessage string `toml:"mfa_message"`
	// AppPasswordsOnly refuses the primary password for mail logins of
	// every account, MFA or not (Fastmail's policy). Default false.
	AppPasswordsOnly bool `toml:"app_passwords_only"`
	// KeepAppPasswordsOnPasswordChange keeps an account's app passwords
	// when its primary password changes. Default false: they are all
	// revoked, as Google does, since a changed password often follows a
	// compromise.
	KeepAppPasswordsOnPasswordChange bool `toml:"keep_app_passwords_on_password_change"`
	// MaxAppPasswords caps the app passwords of one account. Zero:
	// account.DefaultMaxAppPasswords, 40 (as Microsoft); negative: no cap.
	MaxAppPasswords int `toml:"max_app_passwords"`
	// UnusedAfter retires (revokes) an app password not used for this
	// long, counted from its creation if never used ("90d"). Zero: never.
	UnusedAfter Age `toml:"unused_after"`
	// UnusedWarnBefore is how long before its removal an unused password
	// is announced in its owner's activity and the portal. Zero:
	// account.DefaultUnusedWarnBefore, 14 days. Below unused_after.
	UnusedWarnBefore Age `toml:"unused_warn_before"`
	// DevicePolicy is what a login with an app password from another
	// device than the one it was first used from does, for passwords
	// without a policy of their own: "notify" (let in, record, audit),
	// "block" (refuse with an alert naming portal.url) or "off". Empty:
	// authn.DefaultDevicePolicy, notify.
	DevicePolicy string `toml:"device_policy"`
}

// Portal describes the self-service web portal.
type Portal struct {
	// URL is where users create app passwords, shown in the MFA message.
	// An absolute http or https URL. Default empty: no URL is shown.
	URL string `toml:"url"`
	// PortalServer are the portal's own keys (config/portal.go).
	PortalServer
	// OIDC is the sign-in with the organisation's identity provider
	// (config/oidc.go).
	OIDC PortalOIDC `toml:"oidc"`
}

// Limits bounds what a client may cost. Zero means the default; the keys
// of the front-ends (proxy.Limits: IMAP and SMTP alike) stay zero after
// Load, and the front-ends apply their defaults.
type Limits struct {
	// PreauthTimeout bounds each exchange before login. Zero:
	// proxy.DefaultPreauthTimeout, 60s.
	PreauthTimeout Duration `toml:"preauth_timeout"`
	// IdleTimeout ends a relayed IMAP session when one direction is
	// silent this long. Zero: proxy.DefaultIdle, 35m. At least 1s; below
	// 30m clients in IDLE are cut off, since RFC 2177 §3 has them re-issue
	// IDLE every 29 minutes.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxLine is the longest IMAP command line before login, in bytes.
	// Zero: proxy.DefaultMaxLine, 8192; at least 512.
	MaxLine int `toml:"max_line"`
	// MaxLiteral is the largest IMAP literal before login, in bytes.
	// Zero: proxy.DefaultMaxLiteral, 8192; at least 512.
	MaxLiteral int `toml:"max_literal"`
	// MaxFailedLogins is the number of failed logins on one connection
	// before passgate closes it. Zero: proxy.DefaultMaxFailedLogins, 3.
	MaxFailedLogins int `toml:"max_failed_logins"`
	// ShutdownGrace is how long a stopping server waits for sessions to
	// end before closing them. Default 30s.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// GuardLimits are the brute-force, connection and cache limits
	// (config/limits.go); their keys are [limits] keys.
	GuardLimits
}

// Control locates the unix socket through which CLI commands reach a
// running server.
type Control struct {
	// Socket is the unix socket path. Default "passgate.sock" next to the
	// store file; a relative path is relative to the configuration file.
	Socket string `toml:"socket"`
}

// Log configures the process log (log/slog).
type Log struct {
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `toml:"level"`
	// Format is "text" (default) or "json".
	Format string `toml:"format"`
}

// MFAText is the message for a primary-password login to an MFA account:
// Authn.MFAMessage, or its default, with "{portal_url}" replaced by
// Portal.URL (proxy.MFAText).
func (c *Config) MFAText() string {
	return proxy.MFAText(c.Authn.MFAMessage, c.Portal.URL)
}
