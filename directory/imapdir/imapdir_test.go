package imapdir_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/directory/imapdir"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/proxy/upstream"
)

// newAccounts is the mailbox list of the test Dovecot: dave's passdb entry
// refuses him (nologin); IMAP cannot tell MFA or admin users, so bob and
// carol are plain accounts here.
func newAccounts() *testdovecot.Passwd {
	p := new(testdovecot.Passwd)
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		extra := ""
		if u == "dave" {
			extra = "nologin reason=disabled"
		}
		p.Set(u+"@example.org", "primary-"+u+"-pw", extra)
	}
	return p
}

func user(name string) dirtest.User {
	return dirtest.User{Name: name, Password: "primary-" + name + "-pw"}
}

func newDir(t testing.TB, c imapdir.Config) *imapdir.Directory {
	t.Helper()
	d, err := imapdir.New(c)
	if err != nil {
		t.Fatalf("imapdir.New: %v", err)
	}
	return d
}

// config is the directory on s. Its Timeout is the suite's own 30 s
// bound, not the 10 s default: on a loaded machine under -race one login
// (dial, STARTTLS, ID, AUTHENTICATE) to the test's Dovecot took longer than
// 10 s ("right password refused: ... context deadline exceeded" in
// TestConformance/Concurrent). The Connect fixture sets its own.
func config(s *testdovecot.Server, t testing.TB) imapdir.Config {
	return imapdir.Config{
		Addr: s.IMAPAddr, Security: upstream.TLSStartTLS, ForwardClientIP: true,
		TLS:     &tls.Config{RootCAs: testcert.Pool(t, s.CertFile)},
		Names:   directory.Names{DefaultDomain: "example.org"},
		Timeout: 30 * time.Second,
	}
}

// clients gives every login a client address of its own (TEST-NET-2),
// forwarded with ID: Dovecot delays logins from an address that recently
// failed one, and the suite fails logins on purpose. Production passgate
// passes the real client's address the same way.
type clients struct{ *imapdir.Directory }

var nextClient atomic.Uint32

func (c clients) Authenticate(ctx context.Context, user, password string) (directory.Entry, error) {
	n := nextClient.Add(1)
	ip := netip.AddrFrom4([4]byte{198, 51, 100 + byte(n/250%2), byte(1 + n%250)})
	return c.Directory.Authenticate(directory.WithClientIP(ctx, ip), user, password)
}

func TestConformance(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	d := newDir(t, config(s, t))
	dirtest.Run(t, dirtest.Fixture{
		Dir:   clients{d},
		Plain: user("alice"), Changing: user("erin"), MFA: user("bob"), Admin: user("carol"), Disabled: user("dave"),
		Unknown:  "nobody-here",
		NoLookup: true, NoState: true,
		Work: d.Requests,
		SetPassword: func(t *testing.T, u dirtest.User, password string) {
			a.SetPassword(t, s, u.Name+"@example.org", password)
		},
		Connect: func(t *testing.T, addr string, timeout time.Duration) directory.Directory {
			c := config(s, t)
			c.Addr, c.Timeout = addr, timeout
			return clients{newDir(t, c)}
		},
	})
}

// TestSecurity checks implicit TLS, STARTTLS and plain IMAP, and that an
// untrusted certificate is unavailable, never a login.
func TestSecurity(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	trusted := &tls.Config{RootCAs: testcert.Pool(t, s.CertFile)}
	untrusted := testcert.ClientConfig("")
	tests := []struct {
		name     string
		addr     string
		security upstream.TLSMode
		tls      *tls.Config
		ok       bool
	}{
		{"implicit TLS", s.IMAPSAddr, upstream.TLSImplicit, trusted, true},
		{"STARTTLS", s.IMAPAddr, upstream.TLSStartTLS, trusted, true},
		{"none on loopback", s.IMAPAddr, upstream.TLSNone, nil, true},
		{"implicit TLS, untrusted", s.IMAPSAddr, upstream.TLSImplicit, untrusted, false},
		{"STARTTLS, untrusted", s.IMAPAddr, upstream.TLSStartTLS, untrusted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t, imapdir.Config{Addr: tt.addr, Security: tt.security, TLS: tt.tls})
			e, err := d.Authenticate(context.Background(), "alice@example.org", "primary-alice-pw")
			if tt.ok && (err != nil || e.Username != "alice@example.org") {
				t.Fatalf("Authenticate = %+v, %v", e, err)
			}
			if !tt.ok && !errors.Is(err, directory.ErrUnavailable) {
				t.Fatalf("Authenticate with an untrusted certificate = %+v, %v; want ErrUnavailable", e, err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []imapdir.Config{
		{Addr: "mail.example.org"},
		{Addr: "mail.example.org:143", Security: upstream.TLSNone},
		{Addr: "mail.example.org:143", Security: "ssl"},
		{Addr: "mail.example.org:143", Names: directory.Names{DefaultDomain: "a@b"}},
	} {
		if _, err := imapdir.New(c); err == nil || !strings.Contains(err.Error(), "imap directory") {
			t.Errorf("New(%+v): %v, want an error", c, err)
		}
	}
}

// TestForwardClientIP: with ForwardClientIP the server sees (and would
// penalise) the client's address, not passgate's.
func TestForwardClientIP(t *testing.T) {
	a := newAccounts()
	s := testdovecot.Start(t, a.String())
	d := newDir(t, config(s, t))
	ctx := directory.WithClientIP(context.Background(), netip.MustParseAddr("192.0.2.99"))
	if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.Is(err, directory.ErrBadPassword) {
		t.Fatalf("Authenticate: %v", err)
	}
	if log := s.Log(); !strings.Contains(log, ",192.0.2.99,") {
		t.Fatalf("the dovecot log does not name 192.0.2.99:\n%s", log)
	}
}
