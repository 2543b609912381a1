package dovecotauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/internal/testdovecot"
)

// accounts is the passwd-file of the test Dovecot: name -> password and
// extra fields (passdb fields, and userdb fields prefixed userdb_).
type accounts struct {
	mu    sync.Mutex
	pw    map[string]string
	extra map[string]string
}

func newAccounts() *accounts {
	a := &accounts{pw: map[string]string{}, extra: map[string]string{
		"bob@example.org":   "userdb_passgate_mfa=yes",
		"carol@example.org": "userdb_passgate_admin=yes",
		"dave@example.org":  "nologin reason=disabled userdb_passgate_disabled",
	}}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		a.pw[u+"@example.org"] = "primary-" + u + "-pw"
	}
	return a
}

func (a *accounts) passwd() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var lines []string
	for name, pw := range a.pw {
		lines = append(lines, fmt.Sprintf("%s:{PLAIN}%s::::::%s", name, pw, a.extra[name]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func user(name string) dirtest.User { return dirtest.User{Name: name, Password: "primary-" + name + "-pw"} }

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

func fixture(s *testdovecot.Server, a *accounts, d *dovecotauth.Directory) dirtest.Fixture {
	return dirtest.Fixture{
		Dir:   d,
		Plain: user("alice"), Changing: user("erin"), MFA: user("bob"), Admin: user("carol"), Disabled: user("dave"),
		Unknown: "nobody-here",
		Work:    d.Requests,
		SetPassword: func(t *testing.T, u dirtest.User, password string) {
			a.mu.Lock()
			a.pw[u.Name+"@example.org"] = password
			a.mu.Unlock()
			s.WritePasswd(t, a.passwd())
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
	s := testdovecot.Start(t, a.passwd())
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
	s := testdovecot.Start(t, a.passwd())
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
	s := testdovecot.Start(t, a.passwd())
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
