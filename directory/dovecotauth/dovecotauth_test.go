package dovecotauth_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/internal/testdovecot"
)

// newAccounts returns the passwd-file of the test Dovecot: alice and erin
// plain, bob MFA, carol admin, dave disabled (nologin in the passdb and a
// userdb field); each user's password is primary-<name>-pw.
func newAccounts() *testdovecot.Passwd {
	p := new(testdovecot.Passwd)
	extra := map[string]string{
		"bob":   "userdb_passgate_mfa=yes",
		"carol": "userdb_passgate_admin=yes",
		"dave":  "nologin reason=disabled userdb_passgate_disabled",
	}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		p.Set(u+"@example.org", "primary-"+u+"-pw", extra[u])
	}
	return p
}

func user(name string) dirtest.User {
	return dirtest.User{Name: name, Password: "primary-" + name + "-pw"}
}

func config(authSocket, userdbSocket string) dovecotauth.Config {
	rule := func(s string) directory.AttrRule {
		r, err := directory.ParseAttrRule(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	return dovecotauth.Config{
		AuthSocket: authSocket, UserdbSocket: userdbSocket,
		Disabled: rule("passgate_disabled"), MFA: rule("passgate_mfa=yes"), Admin: rule("passgate_admin=yes"),
		Names: directory.Names{DefaultDomain: "example.org"},
	}
}

func newDir(t testing.TB, c dovecotauth.Config) *dovecotauth.Directory {
	t.Helper()
	d, err := dovecotauth.New(c)
	if err != nil {
		t.Fatalf("dovecotauth.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func fixture(s *testdovecot.Server, a *testdovecot.Passwd, d *dovecotauth.Directory) dirtest.Fixture {
	return dirtest.Fixture{
		Dir:   d,
		Plain: user("alice"), Changing: user("erin"), MFA: user("bob"), Admin: user("carol"), Disabled: user("dave"),
		Unknown: "nobody-here",
		Work:    d.Requests,
		SetPassword: func(t *testing.T, u dirtest.User, password string) {
			a.SetPassword(t, s, u.Name+"@example.org", password)
		},
		Connect: func(t *testing.T, addr string, timeout time.Duration) directory.Directory {
			c := config(addr, addr)
			c.Timeout = timeout
			return newDir(t, c)
		},
	}
}

func TestConformance(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	t.Run("unix", func(t *testing.T) {
		dirtest.Run(t, fixture(s, a, newDir(t, config(s.AuthSocket, s.UserdbSocket))))
	})
	t.Run("tcp", func(t *testing.T) {
		dirtest.Run(t, fixture(s, a, newDir(t, config(s.AuthAddr, s.UserdbAddr))))
	})
}

// TestNoUserdb: without a userdb socket the directory still verifies
// passwords but cannot look users up or tell their state.
func TestNoUserdb(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	d := newDir(t, config("unix:"+s.AuthSocket, ""))
	ctx := context.Background()
	if e, err := d.Authenticate(ctx, "bob", "primary-bob-pw"); err != nil || e.Username != "bob@example.org" || e.MFARequired {
		t.Fatalf("Authenticate(bob) = %+v, %v; want bob without state", e, err)
	}
	if _, err := d.Lookup(ctx, "bob"); !errors.Is(err, directory.ErrUnsupported) {
		t.Fatalf("Lookup without userdb socket: %v, want ErrUnsupported", err)
	}
	// nologin is a passdb field: it still refuses the account.
	if _, err := d.Authenticate(ctx, "dave", "primary-dave-pw"); !errors.Is(err, directory.ErrDisabled) {
		t.Fatalf("Authenticate(dave, nologin): %v, want ErrDisabled", err)
	}
}

// TestClientIP: the client's address reaches Dovecot's log as rip.
func TestClientIP(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	d := newDir(t, config(s.AuthSocket, s.UserdbSocket))
	ctx := directory.WithClientIP(context.Background(), netip.MustParseAddr("192.0.2.55"))
	if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.Is(err, directory.ErrBadPassword) {
		t.Fatalf("Authenticate: %v", err)
	}
	if log := s.Log(); !strings.Contains(log, "192.0.2.55") {
		t.Fatalf("no rip=192.0.2.55 in the dovecot log:\n%s", log)
	}
	if strings.Contains(s.Log(), "primary-alice-pw") {
		t.Fatal("a password in the dovecot log")
	}
}
