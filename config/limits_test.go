package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGuardLimits(t *testing.T) {
	c, err := Parse([]byte(base+lines(
		`[limits]`,
		`trusted_networks = ["10.1.2.3/8", "2001:db8::/32", "192.0.2.1/32"]`,
		`max_connections = 200`,
		`max_connections_per_ip = 20`,
		`fail_window = "1h"`,
		`max_failures_per_ip = 3`,
		`max_failures_per_network = 30`,
		`max_failures_per_account = 50`,
		`max_failures_per_account_ip = 4`,
		`max_hashes_per_ip = 40`,
		`max_hashes_per_network = 400`,
		`max_hashes_per_account = 20`,
		`max_second_factor_failures = 3`,
		`second_factor_window = "2h"`,
		`tarpit_base = "500ms"`,
		`tarpit_max = "4s"`,
		`known_address_ttl = "720h"`,
		`auth_cache_ttl = "1m"`,
		`auth_cache_entries = 1000`,
		`[audit]`,
		`file = "audit/login.json"`,
	)), "/etc/pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := GuardLimits{
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.1/32")},
		MaxConnections: 200, MaxConnectionsPerIP: 20, FailWindow: Duration{time.Hour},
		MaxFailuresPerIP: 3, MaxFailuresPerNetwork: 30, MaxFailuresPerAccount: 50, MaxFailuresPerAccountIP: 4,
		MaxHashesPerIP: 40, MaxHashesPerNetwork: 400, MaxHashesPerAccount: 20,
		MaxSecondFactorFailures: 3, SecondFactorWindow: Duration{2 * time.Hour},
		TarpitBase: Duration{500 * time.Millisecond}, TarpitMax: Duration{4 * time.Second},
		KnownAddressTTL: Duration{720 * time.Hour}, AuthCacheTTL: SwitchableDuration(time.Minute),
		AuthCacheEntries: 1000,
	}
	if !reflect.DeepEqual(c.Limits.GuardLimits, want) {
		t.Errorf("limits\n%+v\nwant\n%+v", c.Limits.GuardLimits, want)
	}
	if c.Audit.File != "/etc/pg/audit/login.json" {
		t.Errorf("audit.file = %q", c.Audit.File)
	}

	d, err := Parse([]byte(base), "/etc/pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Missing keys stay zero: authn and proxy apply their defaults.
	if !reflect.DeepEqual(d.Limits.GuardLimits, GuardLimits{}) || d.Audit.File != "" {
		t.Errorf("defaults %+v, audit %q", d.Limits.GuardLimits, d.Audit.File)
	}
}

func TestAuthCacheOff(t *testing.T) {
	for _, v := range []string{`"off"`, `"0s"`} {
		c, err := Parse([]byte(base+lines(`[limits]`, `auth_cache_ttl = `+v)), t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Limits.AuthCacheTTL.Off() {
			t.Errorf("auth_cache_ttl = %s: %v, not off", v, c.Limits.AuthCacheTTL)
		}
	}
}

func TestGuardLimitsErrors(t *testing.T) {
	for _, tc := range []struct {
		line, key, msg string
	}{
		{`trusted_networks = ["192.0.2.1"]`, "limits.trusted_networks", "192.0.2.1"},
		{`trusted_networks = ["eleven"]`, "limits.trusted_networks", "eleven"},
		{`max_connections = -1`, "limits.max_connections", "negative"},
		{`max_failures_per_ip = -3`, "limits.max_failures_per_ip", "negative"},
		{`fail_window = "10ms"`, "limits.fail_window", "below the minimum"},
		{`tarpit_max = "1s"`, "limits.tarpit_max", "1s is below limits.tarpit_base (2s)"}, // authn's default base
		{`tarpit_base = "20s"`, "limits.tarpit_base", "20s is above the default limits.tarpit_max (15s)"},
		{`tarpit_base = "-1s"`, "limits.tarpit_base", "negative"},
		{`auth_cache_ttl = "-5m"`, "limits.auth_cache_ttl", "negative"},
		{`auth_cache_ttl = "sometimes"`, "limits.auth_cache_ttl", `"off"`},
		{`known_address_ttl = "1s"`, "limits.known_address_ttl", "below the minimum"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			_, err := Parse([]byte(base+lines(`[limits]`, tc.line)), t.TempDir(), nil)
			e := errorFor(t, err, tc.key)
			if e.Line != 9 || !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("error %q (line %d), want line 9 and %q", e.Error(), e.Line, tc.msg)
			}
		})
	}
}
