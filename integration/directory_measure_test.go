package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	authnaccount "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/directory/imapdir"
	"github.com/passgate/passgate/directory/ldap"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/internal/testslapd"
	"github.com/passgate/passgate/portal"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
)

// measureUser is the account of every directory in the measurement.
const (
	measureUser = "measure@example.org"
	measurePW   = "measure-primary-pw"
	measureRuns = 20
)

// TestMeasureDirectories measures, in one run, what a portal sign-in and an
// app-password login cost with each kind of directory (passgate's store, a
// private slapd over LDAP, Dovecot's auth service over UNIX sockets, an
// IMAP login with STARTTLS to the same Dovecot), with the directory's cache
// of account states on (60 s) and off, all in process with the default
// argon2id parameters (19 MiB, t=2). It logs the figures and asserts
// nothing about time:
//
//	go test -count=1 -run TestMeasureDirectories -v ./integration
//
// A portal sign-in is POST /signin (the Guard, without its verified-login
// cache, and the directory) plus the GET of the page it leads to (the
// session's directory check). An app-password login is one Guard.Verify
// over IMAP, with the Guard's verified-login cache (the default: a
// reconnecting client) and without it (one argon2id each).
func TestMeasureDirectories(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement, not a check")
	}
	var dovecot *testdovecot.Server // asked by the dovecot and imap kinds
	dovecotServer := func(t *testing.T) *testdovecot.Server {
		if dovecot == nil {
			dovecot = testdovecot.Start(t, measureUser+":{PLAIN}"+measurePW+"::::::\n")
		}
		return dovecot
	}
	kinds := []struct {
		name string
		open func(t *testing.T) directory.Directory // nil: the store kind
	}{
		{"store", nil},
		{"ldap", measureLDAP},
		{"dovecot", func(t *testing.T) directory.Directory { return measureDovecot(t, dovecotServer(t)) }},
		{"imap", func(t *testing.T) directory.Directory { return measureIMAP(t, dovecotServer(t)) }},
	}
	var rows []string
	for _, k := range kinds {
		var dir directory.Directory
		if k.open != nil {
			dir = k.open(t)
		}
		for _, cache := range []time.Duration{0, -1} {
			m := newMeasurement(t, k.name, dir, cache)
			signIn, cached, uncached := m.signIn(t), m.appLogin(t, m.cachedGuard, 10*measureRuns), m.appLogin(t, m.guard, measureRuns)
			mode := "60s"
			switch {
			case dir == nil:
				mode = "-"
			case cache < 0:
				mode = "off"
			}
			rows = append(rows, fmt.Sprintf("%-8s %-6s %10.2f %14.2f %14.2f", k.name, mode, ms(signIn), ms(cached), ms(uncached)))
			if dir == nil {
				break
			}
		}
	}
	t.Logf("ms per operation, mean of %d (%d for cache hits) (argon2id m=%d KiB t=%d):\n%-8s %-6s %10s %14s %14s\n%s", measureRuns, 10*measureRuns,
		authn.DefaultParams.MemoryKiB, authn.DefaultParams.Time, "kind", "cache", "sign-in", "app pw (auth", "app pw (no",
		strings.Join(rows, "\n")+"\n"+fmt.Sprintf("%-8s %-6s %10s %14s %14s", "", "", "", "cache hit)", "auth cache)"))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func measureLDAP(t *testing.T) directory.Directory {
	s := testslapd.Start(t, testslapd.Options{Suffix: ldapSuffix, LDIF: testslapd.People(ldapSuffix,
		testslapd.Person{UID: "measure", Mail: measureUser, Password: measurePW})})
	c := ldap.OpenLDAP()
	c.URL, c.BindDN, c.BindPassword = s.URL, testslapd.ServiceDN(ldapSuffix), testslapd.ServicePassword
	c.BaseDN = "ou=people," + ldapSuffix
	c.MFA = ldap.Rule{Group: testslapd.GroupDN(ldapSuffix, "mfa")}
	c.Disabled = ldap.Rule{Group: testslapd.GroupDN(ldapSuffix, "disabled")}
	d, err := ldap.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func measureDovecot(t *testing.T, s *testdovecot.Server) directory.Directory {
	d, err := dovecotauth.New(dovecotauth.Config{AuthSocket: s.AuthSocket, UserdbSocket: s.UserdbSocket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func measureIMAP(t *testing.T, s *testdovecot.Server) directory.Directory {
	d, err := imapdir.New(imapdir.Config{Addr: s.IMAPAddr, Security: upstream.TLSStartTLS,
		TLS: &tls.Config{RootCAs: testcert.Pool(t, s.CertFile)}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// measurement is passgate's login decision and portal for one directory.
type measurement struct {
	v                  *authn.Verifier
	guard, cachedGuard *authn.Guard
	portal             *httptest.Server
	appPW              string
}

func newMeasurement(t *testing.T, kind string, dir directory.Directory, cache time.Duration) *measurement {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := &measurement{v: &authn.Verifier{Store: db, Logger: quiet}}
	accounts := &authnaccount.Service{Store: db, Verifier: m.v, Logger: quiet}
	operator := authnaccount.Actor{Door: authnaccount.DoorCLI, Name: "measure"}
	if dir != nil {
		m.v.Directory = &authn.Directory{Dir: dir, Kind: kind, CacheTTL: cache}
	} else if err := accounts.CreateUser(ctx, operator, authnaccount.NewUser{Username: measureUser, Password: measurePW}); err != nil {
		t.Fatal(err)
	}
	// The measured user signs in again and again from one address: lift
	// the hash budgets, which would otherwise refuse the runs.
	limits := authn.Limits{MaxHashesPerAddress: 1 << 20, MaxHashesPerNetwork: 1 << 20, MaxHashesPerAccount: 1 << 20}
	newGuard := func(c *authn.Cache) *authn.Guard {
		return &authn.Guard{Verifier: m.v, Counters: &memcount.Counters{}, Limits: limits, Cache: c, Logger: quiet}
	}
	m.guard, m.cachedGuard = newGuard(nil), newGuard(&authn.Cache{})
	p := &portal.Server{Store: db, Auth: m.guard, Verifier: m.v, Key: make([]byte, 32), Logger: quiet,
		Mail: portal.MailSettings{IMAPHost: "mail.example.org"}}
	m.portal = httptest.NewUnstartedServer(nil)
	p.BaseURL = "http://" + m.portal.Listener.Addr().String()
	m.portal.Config.Handler = p.Handler()
	m.portal.Start()
	t.Cleanup(m.portal.Close)
	m.signInOnce(t) // provisions a directory account
	np, err := accounts.CreateAppPassword(ctx, operator, measureUser, "measure", authnaccount.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.appPW = np.Password
	return m
}

// signInOnce signs in to the portal and loads the page it leads to.
func (m *measurement) signInOnce(t *testing.T) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(m.portal.URL+"/signin", url.Values{"username": {measureUser}, "password": {measurePW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app-passwords" {
		t.Fatalf("portal sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", m.portal.URL+"/app-passwords", nil)
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	page, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK {
		t.Fatalf("the page after sign-in: %d", page.StatusCode)
	}
}

func (m *measurement) signIn(t *testing.T) time.Duration {
	start := time.Now()
	for range measureRuns {
		m.signInOnce(t)
	}
	return time.Since(start) / measureRuns
}

// appLogin logs in runs times with the app password through g, after one
// login that is not timed (it fills the caches and the connection pools).
func (m *measurement) appLogin(t *testing.T, g *authn.Guard, runs int) time.Duration {
	a := authn.Attempt{Username: measureUser, Secret: m.appPW, Protocol: store.ScopeIMAP,
		RemoteIP: netip.MustParseAddr("127.0.0.1"), Mechanism: "PLAIN"}
	var start time.Time
	for i := range runs + 1 {
		if i == 1 {
			start = time.Now()
		}
		if d, err := g.Verify(context.Background(), a); err != nil || d.Result != authn.OK {
			t.Fatalf("app-password login: %v, %v", d.Result, err)
		}
	}
	return time.Since(start) / time.Duration(runs)
}
