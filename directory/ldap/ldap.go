// Package ldap is the directory kind for LDAP servers and Active Directory
// (github.com/go-ldap/ldap/v3): a service account searches for the user
// with a configured filter, and the user's password is checked by binding
// as the DN found, on a connection of its own.
//
// Implementation notes (invariants):
//   - Searches run on connections bound as the service account, user binds
//     on a separate pool, so a search never runs with a user's rights.
//   - Every value put into a filter is escaped (filter.go); a login of
//     "*)(uid=*" matches nothing.
//   - An empty password is refused before any request: an LDAP simple bind
//     with a DN and no password is an unauthenticated bind, which servers
//     answer with success (RFC 4513 section 5.1.2).
//   - For a wrong password, known and unknown users cost one search and one
//     bind each: an unknown user's password is bound against DummyDN.
//   - Group and filter rules are evaluated only after the password
//     verified (or in Lookup, which callers use after verifying an app
//     password themselves).
//   - Any failure to get an answer is directory.ErrUnavailable.
package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/internal/connpool"
)

// Directory is an LDAP directory. Use New; Close it when done.
type Directory struct {
	cfg         Config
	userFilter  filterTemplate
	groupFilter filterTemplate
	groupDNs    map[*Rule]*ldap.DN         // parsed Rule.Group of Disabled, MFA, Admin
	attrs       []string                   // attributes fetched with the user
	search      *connpool.Pool[*ldap.Conn] // bound as the service account
	binds       *connpool.Pool[*ldap.Conn] // users' binds
	log         *slog.Logger
	requests    atomic.Int64
}

var _ directory.Directory = (*Directory)(nil)

// New checks cfg, applies its defaults and returns the directory. It does
// not connect: the first request does.
func New(cfg Config) (*Directory, error) {
	d := &Directory{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dial, err := d.configure()
	if err != nil {
		return nil, fmt.Errorf("ldap directory: %w", err)
	}
	d.search = connpool.New(d.cfg.PoolSize, func(ctx context.Context) (*ldap.Conn, error) {
		return dial.dial(ctx, true)
	}, isServerAnswer)
	d.binds = connpool.New(d.cfg.PoolSize, func(ctx context.Context) (*ldap.Conn, error) {
		return dial.dial(ctx, false)
	}, isServerAnswer)
	return d, nil
}

// configure validates the configuration, fills in defaults and returns the
// dialer.
func (d *Directory) configure() (*dialer, error) {
	c := &d.cfg
	if err := c.Names.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("url %q: want ldap://host[:port] or ldaps://host[:port]", c.URL)
	}
	dl := &dialer{network: "tcp", startTLS: c.StartTLS, cfg: c}
	switch u.Scheme {
	case "ldaps":
		dl.ldaps = true
		dl.addr = hostPort(u, "636")
	case "ldap":
		dl.addr = hostPort(u, "389")
	default:
		return nil, fmt.Errorf("url %q: scheme must be ldap or ldaps", c.URL)
	}
	if dl.ldaps && c.StartTLS {
		return nil, fmt.Errorf("url %q: start_tls is for ldap://, not ldaps://", c.URL)
	}
	if !dl.ldaps && !c.StartTLS && !c.AllowPlaintext && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("url %q would send passwords in clear: use ldaps://, start_tls, or allow_plaintext", c.URL)
	}
	dl.tls = &tls.Config{}
	if c.TLS != nil {
		dl.tls = c.TLS.Clone()
	}
	if dl.tls.ServerName == "" {
		dl.tls.ServerName = u.Hostname()
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	dl.net.Timeout = c.Timeout
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.BaseDN == "" {
		return nil, fmt.Errorf("base_dn is required")
	}
	if d.userFilter, err = parseFilterTemplate(c.UserFilter, "user", "local", "domain"); err != nil {
		return nil, fmt.Errorf("user_filter: %w", err)
	}
	if c.DummyDN == "" {
		c.DummyDN = "cn=passgate-no-such-user," + c.BaseDN
	}
	if c.AddressAttributes == nil {
		c.AddressAttributes = []string{"mail"}
	}
	if err := d.configureRules(); err != nil {
		return nil, err
	}
	return dl, nil
}

// configureRules checks the Disabled, MFA and Admin rules and lists the
// attributes that the user search must fetch.
func (d *Directory) configureRules() error {
	c := &d.cfg
	switch c.Membership {
	case "":
		c.Membership = MemberOf
	case MemberOf, GroupSearch:
	default:
		return fmt.Errorf("membership %q: want %q or %q", c.Membership, MemberOf, GroupSearch)
	}
	d.attrs = append([]string(nil), c.AddressAttributes...)
	if c.UsernameAttribute != "" {
		d.attrs = append(d.attrs, c.UsernameAttribute)
	}
	d.groupDNs = map[*Rule]*ldap.DN{}
	for _, r := range []struct {
		name string
		rule *Rule
	}{{"disabled", &c.Disabled}, {"mfa", &c.MFA}, {"admin", &c.Admin}} {
		if r.rule.Group != "" {
			dn, err := ldap.ParseDN(r.rule.Group)
			if err != nil {
				return fmt.Errorf("%s group %q: %v", r.name, r.rule.Group, err)
			}
			d.groupDNs[r.rule] = dn
			if c.Membership == MemberOf {
				d.attrs = append(d.attrs, "memberOf")
			}
		}
		if !r.rule.Attribute.IsZero() {
			d.attrs = append(d.attrs, r.rule.Attribute.Name)
		}
		if r.rule.Filter != "" {
			if _, err := ldap.CompileFilter(r.rule.Filter); err != nil {
				return fmt.Errorf("%s filter %q: %v", r.name, r.rule.Filter, err)
			}
		}
	}
	slices.Sort(d.attrs)
	d.attrs = slices.Compact(d.attrs)
	if len(d.attrs) == 0 {
		d.attrs = []string{"1.1"} // RFC 4511 section 4.5.1.8: no attributes
	}
	if c.GroupBaseDN == "" {
		c.GroupBaseDN = c.BaseDN
	}
	if c.GroupFilter == "" {
		c.GroupFilter = DefaultGroupFilter
	}
	var err error
	if d.groupFilter, err = parseFilterTemplate(c.GroupFilter, "dn"); err != nil {
		return fmt.Errorf("group_filter: %w", err)
	}
	return nil
}

func hostPort(u *url.URL, defaultPort string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), defaultPort)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes the idle connections.
func (d *Directory) Close() error {
	d.search.Close()
	d.binds.Close()
	return nil
}

// Requests returns how many requests (searches and binds) the directory has
// sent for lookups and logins so far; connection set-up (StartTLS, the
// service bind) is not counted.
func (d *Directory) Requests() int64 { return d.requests.Load() }

// unavailable wraps err as directory.ErrUnavailable for operation op.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ldap %s: %w: %w", op, directory.ErrUnavailable, err)
	}
	return fmt.Errorf("ldap %s: %w: %v", op, directory.ErrUnavailable, err)
}
