package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"time"

	"github.com/passgate/passgate/authn"
)

// GuardLimits are the [limits] keys of the login guard (authn.Guard) and
// of the connection limits. Zero means the default, and stays zero after
// Load: the defaults below are those of authn.Limits, authn.Cache and
// proxy.ConnLimiter, which apply them.
type GuardLimits struct {
	// TrustedNetworks are exempt from failure counting, the tarpit and
	// blocks (CIDR prefixes, e.g. "10.0.0.0/8"; a single address is
	// written /32 or /128). Stored masked. Default none.
	TrustedNetworks []netip.Prefix `toml:"trusted_networks"`
	// MaxConnections bounds the client connections open at once per
	// protocol (IMAP, SMTP and the portal each). Zero: proxy.ConnLimiter's
	// default, 10000.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP bounds the connections open at once from one
	// address, per protocol. Zero: proxy.ConnLimiter's default, 50
	// (Outlook opens several per account). The portal counts its
	// portal.trusted_proxies in the total only.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxSessionsPerUser bounds the relayed sessions (IMAP and SMTP
	// together) one account may have open at once, across every address
	// (like Dovecot's mail_max_userip_connections, but per account). A
	// login past it is refused (IMAP NO [LIMIT], SMTP 421 4.7.0) and
	// audited "session-limit". Zero (default): no limit.
	MaxSessionsPerUser int `toml:"max_sessions_per_user"`
	// FailWindow is the fixed window in which failed logins are counted;
	// a block lasts until its window ends. Default 10m.
	FailWindow Duration `toml:"fail_window"`
	// MaxFailuresPerIP: failures per window from one IPv4 address or IPv6
	// /64 before it is blocked. Default 10.
	MaxFailuresPerIP int `toml:"max_failures_per_ip"`
	// MaxFailuresPerNetwork: failures per window from one IPv4 /24 or
	// IPv6 /48 before it is blocked. Default 100.
	MaxFailuresPerNetwork int `toml:"max_failures_per_network"`
	// MaxFailuresPerAccount: failures per window against one account
	// before it is blocked for every address except those that logged in
	// to it successfully within KnownAddressTTL. Default 30.
	MaxFailuresPerAccount int `toml:"max_failures_per_account"`
	// MaxFailuresPerAccountIP: failures per window against one account
	// from one address; a success resets it. Default 5.
	MaxFailuresPerAccountIP int `toml:"max_failures_per_account_ip"`
	// MaxHashesPerIP, MaxHashesPerNetwork and MaxHashesPerAccount bound
	// the argon2id evaluations (successes included) that one address,
	// network or account can cause per window. Defaults 200, 1000, 100.
	MaxHashesPerIP      int `toml:"max_hashes_per_ip"`
	MaxHashesPerNetwork int `toml:"max_hashes_per_network"`
	MaxHashesPerAccount int `toml:"max_hashes_per_account"`
	// MaxSecondFactorFailures: wrong portal codes (TOTP or recovery) per
	// account in SecondFactorWindow before the second factor is locked;
	// a new password step does not reset it. Defaults 5 and 1h.
	MaxSecondFactorFailures int      `toml:"max_second_factor_failures"`
	SecondFactorWindow      Duration `toml:"second_factor_window"`
	// TarpitBase is the reply delay after an address's first failure; it
	// doubles with each further failure in the window. Default 2s.
	TarpitBase Duration `toml:"tarpit_base"`
	// TarpitMax caps the delay; blocked attempts wait this long. Default
	// 15s, as Dovecot's auth_penalty. At least TarpitBase.
	TarpitMax Duration `toml:"tarpit_max"`
	// KnownAddressTTL is how long an address that logged in to an account
	// stays exempt from the account's block. Default 168h (7 days).
	KnownAddressTTL Duration `toml:"known_address_ttl"`
	// AuthCacheTTL is how long a verified login is reused without
	// argon2id. Default 5m; "0s" or "off" disables the cache (Off).
	AuthCacheTTL SwitchableDuration `toml:"auth_cache_ttl"`
	// AuthCacheEntries bounds the cache. Default 100000.
	AuthCacheEntries int `toml:"auth_cache_entries"`
}

// SwitchableDuration is a duration that the file may also switch off with
// "off" or "0s" (see Off); a missing key is zero, the default.
type SwitchableDuration time.Duration

// switchedOff marks an explicit "off".
const switchedOff SwitchableDuration = -1

// UnmarshalText parses "off" or a Go duration string.
func (d *SwitchableDuration) UnmarshalText(text []byte) error {
	if string(text) == "off" {
		*d = switchedOff
		return nil
	}
	var v Duration
	if err := v.UnmarshalText(text); err != nil {
		return fmt.Errorf("%w, or \"off\"", err)
	}
	switch {
	case v.Duration == 0:
		*d = switchedOff
	case v.Duration < 0:
		return fmt.Errorf("%q is negative", text)
	default:
		*d = SwitchableDuration(v.Duration)
	}
	return nil
}

// Off reports whether the file switched the duration off.
func (d SwitchableDuration) Off() bool { return d == switchedOff }

// guardLimits validates g. Its zero values stay: authn.Limits and
// authn.Cache apply their defaults.
func (l *loader) guardLimits(g *GuardLimits) {
	for i, p := range g.TrustedNetworks {
		if !p.IsValid() {
			l.fail("limits.trusted_networks", nil, "entry %d is not a CIDR prefix", i+1)
			continue
		}
		g.TrustedNetworks[i] = p.Masked()
	}
	l.count("limits.max_connections", &g.MaxConnections, 0, 1)
	l.count("limits.max_connections_per_ip", &g.MaxConnectionsPerIP, 0, 1)
	l.count("limits.max_sessions_per_user", &g.MaxSessionsPerUser, 0, 1)
	l.duration("limits.fail_window", &g.FailWindow, 0, time.Second)
	l.count("limits.max_failures_per_ip", &g.MaxFailuresPerIP, 0, 1)
	l.count("limits.max_failures_per_network", &g.MaxFailuresPerNetwork, 0, 1)
	l.count("limits.max_failures_per_account", &g.MaxFailuresPerAccount, 0, 1)
	l.count("limits.max_failures_per_account_ip", &g.MaxFailuresPerAccountIP, 0, 1)
	l.count("limits.max_hashes_per_ip", &g.MaxHashesPerIP, 0, 1)
	l.count("limits.max_hashes_per_network", &g.MaxHashesPerNetwork, 0, 1)
	l.count("limits.max_hashes_per_account", &g.MaxHashesPerAccount, 0, 1)
	l.count("limits.max_second_factor_failures", &g.MaxSecondFactorFailures, 0, 1)
	l.duration("limits.second_factor_window", &g.SecondFactorWindow, 0, time.Second)
	l.duration("limits.tarpit_base", &g.TarpitBase, 0, 0)
	l.duration("limits.tarpit_max", &g.TarpitMax, 0, 0)
	base := cmp.Or(g.TarpitBase.Duration, authn.DefaultTarpitBase)
	switch tmax := cmp.Or(g.TarpitMax.Duration, authn.DefaultTarpitMax); {
	case tmax >= base:
	case g.TarpitMax.Duration == 0:
		l.fail("limits.tarpit_base", nil, "%s is above the default limits.tarpit_max (%s)", base, tmax)
	default:
		l.fail("limits.tarpit_max", nil, "%s is below limits.tarpit_base (%s)", tmax, base)
	}
	l.duration("limits.known_address_ttl", &g.KnownAddressTTL, 0, time.Minute)
	l.count("limits.auth_cache_entries", &g.AuthCacheEntries, 0, 1)
}
