package ldap_test

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/directory/ldap"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testslapd"
)

//go:embed testdata/users.ldif
var usersLDIF string

const (
	suffix      = "dc=example,dc=org"
	serviceDN   = "cn=passgate,ou=services," + suffix
	servicePW   = "service-secret"
	mfaGroup    = "cn=mfa,ou=groups," + suffix
	adminGroup  = "cn=admins,ou=groups," + suffix
	disabledGrp = "cn=disabled,ou=groups," + suffix
)

// aclServiceOnly lets only the service account (and each user, their own
// entry) read the directory, so a search run on a connection bound as a
// user would find nothing: the separate pools are tested by every lookup.
const aclServiceOnly = `access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="` + serviceDN + `" read
  by self read
  by * none`

func startSlapd(t testing.TB) *testslapd.Server {
	t.Helper()
	schema, err := filepath.Abs("testdata/ad-like.schema")
	if err != nil {
		t.Fatal(err)
	}
	return testslapd.Start(t, testslapd.Options{Suffix: suffix, LDIF: usersLDIF, Schemas: []string{schema}, ACL: aclServiceOnly})
}

// openLDAPConfig is the OpenLDAP preset over ou=people with group rules.
func openLDAPConfig(s *testslapd.Server) ldap.Config {
	c := ldap.OpenLDAP()
	c.URL = s.URL
	c.BindDN, c.BindPassword = serviceDN, servicePW
	c.BaseDN = "ou=people," + suffix
	c.UserFilter = "(&(objectClass=inetOrgPerson)(|(mail={user})(uid={local})))"
	c.Names = directory.Names{DefaultDomain: "example.org"}
	c.Disabled = ldap.Rule{Group: disabledGrp}
	c.MFA = ldap.Rule{Group: mfaGroup}
	c.Admin = ldap.Rule{Group: adminGroup}
	return c
}

// adConfig is the ActiveDirectory preset over ou=ad (AD-like schema).
func adConfig(s *testslapd.Server) ldap.Config {
	c := ldap.ActiveDirectory()
	c.URL = s.URL
	c.BindDN, c.BindPassword = serviceDN, servicePW
	c.BaseDN = "ou=ad," + suffix
	c.Names = directory.Names{DefaultDomain: "corp.example.org"}
	c.MFA = ldap.Rule{Group: mfaGroup}
	c.Admin = ldap.Rule{Group: adminGroup}
	return c
}

func newDir(t testing.TB, c ldap.Config) *ldap.Directory {
	t.Helper()
	d, err := ldap.New(c)
	if err != nil {
		t.Fatalf("ldap.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func user(name string) dirtest.User {
	return dirtest.User{Name: name, Password: "primary-" + name + "-pw"}
}

// fixture returns the conformance fixture of directory d on s; people are
// the logins of the plain, changing, MFA, admin and disabled users.
func fixture(s *testslapd.Server, c ldap.Config, d *ldap.Directory, dn func(login string) string, people [5]string) dirtest.Fixture {
	return dirtest.Fixture{
		Dir:   d,
		Plain: user(people[0]), Changing: user(people[1]), MFA: user(people[2]), Admin: user(people[3]), Disabled: user(people[4]),
		Unknown: "nobody-here",
		Work:    d.Requests,
		SetPassword: func(t *testing.T, u dirtest.User, password string) {
			s.SetPassword(t, dn(u.Name), password)
		},
		Connect: func(t *testing.T, addr string, timeout time.Duration) directory.Directory {
			c.URL = "ldap://" + addr
			c.Timeout = timeout
			return newDir(t, c)
		},
	}
}

func TestConformanceOpenLDAP(t *testing.T) {
	s := startSlapd(t)
	c := openLDAPConfig(s)
	d := newDir(t, c)
	dirtest.Run(t, fixture(s, c, d, func(login string) string {
		return "uid=" + login + ",ou=people," + suffix
	}, [5]string{"alice", "erin", "bob", "carol", "dave"}))
}

func TestConformanceActiveDirectoryPreset(t *testing.T) {
	s := startSlapd(t)
	c := adConfig(s)
	d := newDir(t, c)
	dirtest.Run(t, fixture(s, c, d, func(login string) string {
		return "cn=" + login + ",ou=ad," + suffix
	}, [5]string{"adplain", "adchange", "admfa", "adadmin", "addisabled"}))
}

// TestActiveDirectoryEntry checks what the AD preset makes of an entry:
// login by sAMAccountName, userPrincipalName or mail, the mail attribute as
// the username, smtp: proxyAddresses as addresses, userAccountControl's
// disabled bit.
func TestActiveDirectoryEntry(t *testing.T) {
	s := startSlapd(t)
	d := newDir(t, adConfig(s))
	ctx := context.Background()
	want := directory.Entry{
		Username:  "ad.plain@example.org",
		ID:        "cn=adplain,ou=ad," + suffix,
		Addresses: []string{"ad.plain@example.org", "adplain@example.org"},
	}
	for _, login := range []string{"adplain", "ADPlain", "adplain@corp.example.org"} {
		e, err := d.Authenticate(ctx, login, "primary-adplain-pw")
		if err != nil || !equalEntry(e, want) {
			t.Fatalf("Authenticate(%q) = %+v, %v; want %+v", login, e, err, want)
		}
	}
	e, err := d.Lookup(ctx, "addisabled")
	if err != nil || !e.Disabled || e.Username != "ad.disabled@example.org" {
		t.Fatalf("Lookup(addisabled) = %+v, %v; want disabled by userAccountControl", e, err)
	}
	// The mail address is the passgate username, which passgate looks the
	// account up by at every app-password login: it must find the entry.
	if e, err := d.Lookup(ctx, "ad.plain@example.org"); err != nil || !equalEntry(e, want) {
		t.Fatalf("Lookup by mail (the passgate username) = %+v, %v; want %+v", e, err, want)
	}
}

func equalEntry(a, b directory.Entry) bool {
	return a.Username == b.Username && strings.EqualFold(a.ID, b.ID) && a.Disabled == b.Disabled &&
		a.MFARequired == b.MFARequired && a.Admin == b.Admin && strings.Join(a.Addresses, ",") == strings.Join(b.Addresses, ",")
}

// TestRuleForms checks each way of saying who must use MFA: memberOf, a
// group search, an attribute, a server-side filter.
func TestRuleForms(t *testing.T) {
	s := startSlapd(t)
	tests := []struct {
		name       string
		membership ldap.Membership
		rule       ldap.Rule
		mfa        []string // users with MFARequired
	}{
		{"memberOf", ldap.MemberOf, ldap.Rule{Group: mfaGroup}, []string{"bob"}},
		{"group search", ldap.GroupSearch, ldap.Rule{Group: mfaGroup}, []string{"bob"}},
		{"group search, other group", ldap.GroupSearch, ldap.Rule{Group: "cn=staff,ou=groups," + suffix}, []string{"alice", "bob"}},
		{"attribute", ldap.MemberOf, ldap.Rule{Attribute: directory.AttrRule{Name: "employeeType", Value: "passgate-mfa"}}, []string{"frank"}},
		{"filter", ldap.MemberOf, ldap.Rule{Filter: "(|(employeeType=passgate-mfa)(uid=carol))"}, []string{"carol", "frank"}},
		{"group or attribute", ldap.MemberOf, ldap.Rule{Group: mfaGroup, Attribute: directory.AttrRule{Name: "employeeType", Value: "passgate-mfa"}}, []string{"bob", "frank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openLDAPConfig(s)
			c.Membership, c.MFA, c.GroupBaseDN = tt.membership, tt.rule, "ou=groups,"+suffix
			d := newDir(t, c)
			for _, u := range []string{"alice", "bob", "carol", "frank"} {
				want := false
				for _, m := range tt.mfa {
					want = want || m == u
				}
				e, err := d.Authenticate(context.Background(), u, "primary-"+u+"-pw")
				if err != nil || e.MFARequired != want {
					t.Errorf("Authenticate(%s) = %+v, %v; want MFARequired %v", u, e, err, want)
				}
			}
		})
	}
}

// TestTLS checks LDAPS and StartTLS with the test CA, and that a server
// whose certificate is not trusted is unavailable, never a login.
func TestTLS(t *testing.T) {
	s := startSlapd(t)
	trusted := &tls.Config{RootCAs: testcert.Pool(t, s.CertFile)}
	untrusted := &tls.Config{RootCAs: testcert.ClientConfig("").RootCAs}
	tests := []struct {
		name     string
		url      string
		startTLS bool
		tls      *tls.Config
		ok       bool
	}{
		{"ldaps", s.LDAPSURL, false, trusted, true},
		{"StartTLS", s.URL, true, trusted, true},
		{"ldaps, untrusted certificate", s.LDAPSURL, false, untrusted, false},
		{"StartTLS, untrusted certificate", s.URL, true, untrusted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openLDAPConfig(s)
			c.URL, c.StartTLS, c.TLS = tt.url, tt.startTLS, tt.tls
			d := newDir(t, c)
			e, err := d.Authenticate(context.Background(), "alice", "primary-alice-pw")
			if tt.ok && err != nil {
				t.Fatalf("Authenticate over TLS: %v", err)
			}
			if !tt.ok && !errors.Is(err, directory.ErrUnavailable) {
				t.Fatalf("Authenticate with an untrusted certificate = %+v, %v; want ErrUnavailable", e, err)
			}
		})
	}
}

// TestRestart checks that connections the server cut (a restart) are
// replaced, and that a request while the server is down is unavailable.
func TestRestart(t *testing.T) {
	s := startSlapd(t)
	d := newDir(t, openLDAPConfig(s))
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "alice", "primary-alice-pw"); err != nil {
		t.Fatalf("before restart: %v", err)
	}
	s.Stop()
	if e, err := d.Authenticate(ctx, "alice", "primary-alice-pw"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("while down = %+v, %v; want ErrUnavailable", e, err)
	}
	s.Restart(t)
	if _, err := d.Authenticate(ctx, "alice", "primary-alice-pw"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if _, err := d.Lookup(ctx, "bob"); err != nil {
		t.Fatalf("Lookup after restart: %v", err)
	}
}

// TestServiceAccountRefused: a wrong service password is a configuration
// error the operator must see as unavailable, not as unknown users.
func TestServiceAccountRefused(t *testing.T) {
	s := startSlapd(t)
	c := openLDAPConfig(s)
	c.BindPassword = "wrong"
	d := newDir(t, c)
	if _, err := d.Lookup(context.Background(), "alice"); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "service account") {
		t.Fatalf("Lookup with a wrong service password: %v; want ErrUnavailable naming the service account", err)
	}
	if _, err := d.Authenticate(context.Background(), "nobody", "x"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Authenticate with a wrong service password: %v; want ErrUnavailable", err)
	}
}

// TestAmbiguous: a filter that matches two entries is a mistake; nobody
// logs in through it, whatever the password.
func TestAmbiguous(t *testing.T) {
	s := startSlapd(t)
	c := openLDAPConfig(s)
	c.BaseDN = suffix
	c.UserFilter = "(|(uid={local})(cn=adplain))"
	d := newDir(t, c)
	if e, err := d.Authenticate(context.Background(), "alice", "primary-alice-pw"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Authenticate through an ambiguous filter = %+v, %v; want ErrUnavailable", e, err)
	}
}

func TestConfigErrors(t *testing.T) {
	base := ldap.OpenLDAP()
	base.URL, base.BaseDN = "ldap://127.0.0.1:1", suffix
	tests := []struct {
		name   string
		change func(c *ldap.Config)
		want   string
	}{
		{"plaintext to a remote host", func(c *ldap.Config) { c.URL = "ldap://ldap.example.org" }, "in clear"},
		{"ldaps with StartTLS", func(c *ldap.Config) { c.URL, c.StartTLS = "ldaps://ldap.example.org", true }, "start_tls"},
		{"bad scheme", func(c *ldap.Config) { c.URL = "http://ldap.example.org" }, "scheme"},
		{"no base", func(c *ldap.Config) { c.BaseDN = "" }, "base_dn"},
		{"filter without placeholder", func(c *ldap.Config) { c.UserFilter = "(objectClass=person)" }, "user_filter"},
		{"bad group DN", func(c *ldap.Config) { c.MFA.Group = "not a dn" }, "mfa group"},
		{"bad rule filter", func(c *ldap.Config) { c.Admin.Filter = "(uid=" }, "admin filter"},
		{"bad membership", func(c *ldap.Config) { c.Membership = "nested" }, "membership"},
		{"bad default domain", func(c *ldap.Config) { c.Names.DefaultDomain = "a b" }, "default_domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			if _, err := ldap.New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want an error about %s", err, tt.want)
			}
		})
	}
	for _, ok := range []string{"ldaps://ldap.example.org", "ldap://localhost", "ldap://[::1]:3389"} {
		c := base
		c.URL = ok
		if _, err := ldap.New(c); err != nil {
			t.Errorf("New(%s): %v", ok, err)
		}
	}
	c := base
	c.URL, c.StartTLS = "ldap://ldap.example.org", true
	if _, err := ldap.New(c); err != nil {
		t.Errorf("New with StartTLS: %v", err)
	}
}
