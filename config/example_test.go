package config

import (
	"cmp"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
)

// TestExampleFile keeps passgate.example.toml valid and its "default"
// comments true: it parses the example with its paths moved to a temp dir,
// then compares the keys it sets to their defaults with a minimal file.
func TestExampleFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "passgate.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testcert.Write(t, dir, "")
	writeFile(t, filepath.Join(dir, "master-secret"), "example-secret\n")
	data := strings.NewReplacer(
		"/etc/passgate/", dir+"/",
		"/var/lib/passgate/", dir+"/",
	).Replace(string(raw))

	c, err := Parse([]byte(data), "/nonexistent", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.IMAP
	if m.Listen != "0.0.0.0:143" || m.ListenTLS != "0.0.0.0:993" || m.AllowCleartext {
		t.Errorf("imap = %+v", m)
	}
	u := m.Upstream
	if u.Address != "127.0.0.1:143" || u.Login != upstream.ModeMaster || u.MasterUser != "passgate" ||
		u.MasterSecret != "example-secret" || !u.SendID || u.TLSConfig != nil {
		t.Errorf("upstream = %+v", u)
	}
	if c.TLS.Config == nil {
		t.Error("example has no TLS config")
	}
	if c.Store.Path != filepath.Join(dir, "passgate.db") || c.Control.Socket != filepath.Join(dir, "passgate.sock") {
		t.Errorf("store %q, control %q", c.Store.Path, c.Control.Socket)
	}
	if got, want := c.MFAText(), "Application password required: create one at https://mail.example.org/app-passwords"; got != want {
		t.Errorf("MFAText = %q, want %q", got, want)
	}

	// Every value the example calls a default must be one.
	d, err := Parse([]byte(base), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	du := d.IMAP.Upstream
	if u.TLS != du.TLS || u.MasterSeparator != du.MasterSeparator ||
		u.DialTimeout != du.DialTimeout || u.LoginTimeout != du.LoginTimeout {
		t.Errorf("example upstream defaults differ: %+v vs %+v", u, du)
	}
	if dl := componentDefaults(d.Limits); !reflect.DeepEqual(c.Limits, dl) {
		t.Errorf("example limits %+v, defaults %+v", c.Limits, dl)
	}
	if c.Log != d.Log {
		t.Errorf("example log %+v, defaults %+v", c.Log, d.Log)
	}
	a, da := c.Authn, d.Authn
	if a.ArgonMemoryKiB != da.ArgonMemoryKiB || a.ArgonTime != da.ArgonTime || a.ArgonThreads != da.ArgonThreads ||
		a.MFAMessage != proxy.DefaultMFAMessage || a.MaxAppPasswords != account.DefaultMaxAppPasswords {
		t.Errorf("example authn %+v, defaults %+v", a, da)
	}
}

// componentDefaults is l with each key that Load leaves zero set to the
// default its component applies (proxy, authn), as the example writes it.
func componentDefaults(l Limits) Limits {
	orDur := func(d *Duration, def time.Duration) { d.Duration = cmp.Or(d.Duration, def) }
	orDur(&l.PreauthTimeout, proxy.DefaultPreauthTimeout)
	orDur(&l.IdleTimeout, proxy.DefaultIdle)
	l.MaxLine = cmp.Or(l.MaxLine, proxy.DefaultMaxLine)
	l.MaxLiteral = cmp.Or(l.MaxLiteral, proxy.DefaultMaxLiteral)
	l.MaxFailedLogins = cmp.Or(l.MaxFailedLogins, proxy.DefaultMaxFailedLogins)
	g := &l.GuardLimits
	g.MaxConnections = cmp.Or(g.MaxConnections, proxy.DefaultMaxConnections)
	g.MaxConnectionsPerIP = cmp.Or(g.MaxConnectionsPerIP, proxy.DefaultMaxConnectionsPerIP)
	orDur(&g.FailWindow, authn.DefaultFailWindow)
	g.MaxFailuresPerIP = cmp.Or(g.MaxFailuresPerIP, authn.DefaultMaxPerAddress)
	g.MaxFailuresPerNetwork = cmp.Or(g.MaxFailuresPerNetwork, authn.DefaultMaxPerNetwork)
	g.MaxFailuresPerAccount = cmp.Or(g.MaxFailuresPerAccount, authn.DefaultMaxPerAccount)
	g.MaxFailuresPerAccountIP = cmp.Or(g.MaxFailuresPerAccountIP, authn.DefaultMaxPerAccountAddress)
	g.MaxHashesPerIP = cmp.Or(g.MaxHashesPerIP, authn.DefaultMaxHashesPerAddress)
	g.MaxHashesPerNetwork = cmp.Or(g.MaxHashesPerNetwork, authn.DefaultMaxHashesPerNetwork)
	g.MaxHashesPerAccount = cmp.Or(g.MaxHashesPerAccount, authn.DefaultMaxHashesPerAccount)
	g.MaxSecondFactorFailures = cmp.Or(g.MaxSecondFactorFailures, authn.DefaultMaxSecondFactorFailures)
	orDur(&g.SecondFactorWindow, authn.DefaultSecondFactorWindow)
	orDur(&g.TarpitBase, authn.DefaultTarpitBase)
	orDur(&g.TarpitMax, authn.DefaultTarpitMax)
	orDur(&g.KnownAddressTTL, authn.DefaultKnownAddressTTL)
	g.AuthCacheTTL = cmp.Or(g.AuthCacheTTL, SwitchableDuration(authn.DefaultCacheTTL))
	g.AuthCacheEntries = cmp.Or(g.AuthCacheEntries, authn.DefaultCacheEntries)
	return l
}

// TestExampleFileDocumentsEveryKey checks that every key of the Config
// struct appears in the example, set or commented out.
func TestExampleFileDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "passgate.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	keys, table := tomlKeys(Config{})
	for _, key := range keys {
		if table[key] {
			if !strings.Contains(text, "\n["+key+"]\n") {
				t.Errorf("example has no table [%s]", key)
			}
			continue
		}
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(text, "\n"+leaf+" = ") && !strings.Contains(text, "\n# "+leaf+" = ") {
			t.Errorf("example does not show %s", key)
		}
	}
	if len(keys) < 30 {
		t.Errorf("found only %d keys: %q", len(keys), keys)
	}
}
