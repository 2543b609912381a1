package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/store"
)

// errAmbiguous: the user filter matched more than one entry, a mistake in
// the filter or the directory that must not pick one at random.
var errAmbiguous = errors.New("the user filter matches more than one entry")

// Lookup implements directory.Directory.
func (d *Directory) Lookup(ctx context.Context, username string) (directory.Entry, error) {
	name, err := d.cfg.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("ldap lookup: %w", err)
	}
	e, err := d.find(ctx, name)
	switch {
	case err != nil:
		return directory.Entry{}, unavailable("lookup", err)
	case e == nil:
		return directory.Entry{}, fmt.Errorf("ldap lookup: %w", directory.ErrNotFound)
	}
	return d.entry(ctx, e, name)
}

// Authenticate implements directory.Directory.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	name, err := d.cfg.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("ldap authenticate: %w", err)
	}
	if password == "" {
		return directory.Entry{}, fmt.Errorf("ldap authenticate: %w: empty password", directory.ErrBadPassword)
	}
	e, err := d.find(ctx, name)
	if err != nil && !errors.Is(err, errAmbiguous) {
		return directory.Entry{}, unavailable("authenticate", err)
	}
	dn := d.cfg.DummyDN
	if e != nil {
		dn = e.DN
	}
	// The one bind of every attempt: the user's DN, or DummyDN for an
	// unknown (or ambiguous) user, so that both cost the same.
	berr := d.bind(ctx, dn, password)
	switch {
	case errors.Is(err, errAmbiguous):
		return directory.Entry{}, unavailable("authenticate", err)
	case e == nil && (berr == nil || ldap.IsErrorWithCode(berr, ldap.LDAPResultInvalidCredentials)):
		if berr == nil {
			d.log.Warn("ldap: the dummy DN accepted a bind; it must not exist", "dn", dn)
		}
		return directory.Entry{}, fmt.Errorf("ldap authenticate: %w", directory.ErrNotFound)
	case ldap.IsErrorWithCode(berr, ldap.LDAPResultInvalidCredentials):
		return directory.Entry{}, fmt.Errorf("ldap authenticate: %w", directory.ErrBadPassword)
	case berr != nil:
		return directory.Entry{}, unavailable("bind", berr)
	}
	entry, err := d.entry(ctx, e, name)
	if err != nil {
		return directory.Entry{}, err
	}
	if entry.Disabled {
		return entry, fmt.Errorf("ldap authenticate: %w", directory.ErrDisabled)
	}
	return entry, nil
}

// find searches for the user: nil without error when nothing matched.
func (d *Directory) find(ctx context.Context, name string) (*ldap.Entry, error) {
	local, domain := directory.Split(name)
	filter := d.userFilter.expand(map[string]string{"user": name, "local": local, "domain": domain})
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, d.timeLimit(), false, filter, d.attrs, nil)
	var res *ldap.SearchResult
	err := d.search.Run(ctx, func(c *ldap.Conn) error {
		d.requests.Add(1)
		var err error
		res, err = c.Search(req)
		return err
	})
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return nil, errAmbiguous
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, fmt.Errorf("search: base_dn %s does not exist: %w", d.cfg.BaseDN, err)
	case err != nil:
		return nil, fmt.Errorf("search: %w", err)
	case len(res.Entries) > 1:
		return nil, errAmbiguous
	case len(res.Entries) == 0:
		return nil, nil
	}
	return res.Entries[0], nil
}

// bind checks password by binding as dn on a connection of the bind pool.
func (d *Directory) bind(ctx context.Context, dn, password string) error {
	return d.binds.Run(ctx, func(c *ldap.Conn) error {
		d.requests.Add(1)
		return c.Bind(dn, password)
	})
}

func (d *Directory) timeLimit() int {
	return max(1, int(d.cfg.Timeout.Seconds()))
}

// entry turns the user's LDAP entry into a directory.Entry, evaluating the
// Disabled, MFA and Admin rules (group searches and filters cost a request
// each).
func (d *Directory) entry(ctx context.Context, e *ldap.Entry, login string) (directory.Entry, error) {
	out := directory.Entry{Username: login, ID: e.DN, Addresses: addresses(e, d.cfg.AddressAttributes)}
	if a := d.cfg.UsernameAttribute; a != "" {
		if v := e.GetEqualFoldAttributeValue(a); v != "" {
			name, err := store.NormalizeUsername(v)
			if err != nil {
				return directory.Entry{}, unavailable("lookup", fmt.Errorf("%s of %s is not a username: %v", a, e.DN, err))
			}
			out.Username = name
		}
	}
	groups, err := d.groups(ctx, e)
	if err != nil {
		return directory.Entry{}, unavailable("group search", err)
	}
	for _, r := range []struct {
		rule *Rule
		set  *bool
	}{{&d.cfg.Disabled, &out.Disabled}, {&d.cfg.MFA, &out.MFARequired}, {&d.cfg.Admin, &out.Admin}} {
		if *r.set, err = d.match(ctx, r.rule, e, groups); err != nil {
			return directory.Entry{}, unavailable("rule", err)
		}
	}
	return out, nil
}

// groups returns the DNs of the user's groups, when some rule needs them.
func (d *Directory) groups(ctx context.Context, e *ldap.Entry) ([]*ldap.DN, error) {
	if len(d.groupDNs) == 0 {
		return nil, nil
	}
	var values []string
	if d.cfg.Membership == MemberOf {
		values = e.GetEqualFoldAttributeValues("memberOf")
	} else {
		req := ldap.NewSearchRequest(d.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, d.timeLimit(), false, d.groupFilter.expand(map[string]string{"dn": e.DN}), []string{"1.1"}, nil)
		err := d.search.Run(ctx, func(c *ldap.Conn) error {
			d.requests.Add(1)
			res, err := c.Search(req)
			if err != nil {
				return err
			}
			for _, g := range res.Entries {
				values = append(values, g.DN)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("search groups: %w", err)
		}
	}
	var dns []*ldap.DN
	for _, v := range values {
		if dn, err := ldap.ParseDN(v); err == nil {
			dns = append(dns, dn)
		}
	}
	return dns, nil
}

// match evaluates one rule for the user.
func (d *Directory) match(ctx context.Context, r *Rule, e *ldap.Entry, groups []*ldap.DN) (bool, error) {
	if want := d.groupDNs[r]; want != nil {
		for _, g := range groups {
			if g.EqualFold(want) {
				return true, nil
			}
		}
	}
	if !r.Attribute.IsZero() && r.Attribute.Match(e.GetEqualFoldAttributeValues(r.Attribute.Name)) {
		return true, nil
	}
	if r.Filter == "" {
		return false, nil
	}
	req := ldap.NewSearchRequest(e.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, r.Filter, []string{"1.1"}, nil)
	var found bool
	err := d.search.Run(ctx, func(c *ldap.Conn) error {
		d.requests.Add(1)
		res, err := c.Search(req)
		if err != nil {
			return err
		}
		found = len(res.Entries) > 0
		return nil
	})
	return found, err
}

// addresses returns the entry's mail addresses from attrs, normalised and
// without duplicates; "smtp:addr" (proxyAddresses) counts as addr, other
// "type:value" forms are skipped.
func addresses(e *ldap.Entry, attrs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range attrs {
		for _, v := range e.GetEqualFoldAttributeValues(a) {
			if typ, rest, ok := strings.Cut(v, ":"); ok && !strings.Contains(typ, "@") {
				if !strings.EqualFold(typ, "smtp") {
					continue
				}
				v = rest
			}
			addr, err := store.NormalizeUsername(v)
			if err != nil || !strings.Contains(addr, "@") || seen[addr] {
				continue
			}
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out
}
