package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/directory/imapdir"
	"github.com/passgate/passgate/directory/ldap"
	"github.com/passgate/passgate/proxy/sessions"
)

// openedDirectory is the operator's directory of cfg.Directory (kinds
// other than store) and what authn must know about it.
type openedDirectory struct {
	dir   directory.Directory
	admin bool   // the directory decides who is an administrator
	where string // for humans: the URL, socket or address
	close func() error
}

// openDirectory builds the directory of cfg.Directory.Kind; it does not
// connect (the first request does). Errors name the configuration section.
func openDirectory(cfg *config.Config, log *slog.Logger) (openedDirectory, error) {
	c := cfg.Directory
	names := directory.Names{DefaultDomain: c.DefaultDomain}
	noop := func() error { return nil }
	switch c.Kind {
	case config.DirectoryLDAP:
		lc, err := ldapConfig(c.LDAP, names, log)
		if err != nil {
			return openedDirectory{}, fmt.Errorf("directory.ldap: %w", err)
		}
		d, err := ldap.New(lc)
		if err != nil {
			return openedDirectory{}, fmt.Errorf("directory.ldap: %w", err)
		}
		return openedDirectory{dir: d, admin: !lc.Admin.IsZero(), where: c.LDAP.URL, close: d.Close}, nil
	case config.DirectoryDovecot:
		v := c.Dovecot
		d, err := dovecotauth.New(dovecotauth.Config{
			AuthSocket: v.AuthSocket, UserdbSocket: v.UserdbSocket, Service: v.Service,
			Disabled: v.DisabledRule, MFA: v.MFARule, Admin: v.AdminRule,
			PoolSize: v.PoolSize, Timeout: v.Timeout.Duration, Names: names,
		})
		if err != nil {
			return openedDirectory{}, fmt.Errorf("directory.dovecot: %w", err)
		}
		// Without the userdb socket no entry carries the admin field.
		admin := !v.AdminRule.IsZero() && v.UserdbSocket != ""
		return openedDirectory{dir: d, admin: admin, where: v.AuthSocket, close: d.Close}, nil
	case config.DirectoryIMAP:
		v := c.IMAP
		d, err := imapdir.New(imapdir.Config{
			Addr: v.Address, Security: v.TLS, TLS: v.TLSConfig,
			ForwardClientIP: v.ForwardClientIP, Timeout: v.Timeout.Duration, Names: names,
		})
		if err != nil {
			return openedDirectory{}, fmt.Errorf("directory.imap: %w", err)
		}
		return openedDirectory{dir: d, where: v.Address, close: noop}, nil
	}
	return openedDirectory{}, fmt.Errorf("directory.kind %q has no directory to open", c.Kind)
}

// ldapConfig is the preset of c, if any, with every key that c sets.
func ldapConfig(c config.LDAPDirectory, names directory.Names, log *slog.Logger) (ldap.Config, error) {
	var lc ldap.Config
	if c.Preset != "" {
		var err error
		if lc, err = ldap.Preset(c.Preset); err != nil {
			return ldap.Config{}, err
		}
	}
	lc.URL, lc.StartTLS, lc.TLS, lc.AllowPlaintext = c.URL, c.StartTLS, c.TLSConfig, c.AllowPlaintext
	lc.BindDN, lc.BindPassword, lc.BaseDN = c.BindDN, c.BindPassword, c.BaseDN
	setString(&lc.UserFilter, c.UserFilter)
	setString(&lc.UsernameAttribute, c.UsernameAttribute)
	if c.AddressAttributes != nil {
		lc.AddressAttributes = c.AddressAttributes
	}
	overlayRule(&lc.MFA, c.MFAGroup, c.MFARule, c.MFAFilter)
	overlayRule(&lc.Admin, c.AdminGroup, c.AdminRule, c.AdminFilter)
	overlayRule(&lc.Disabled, c.DisabledGroup, c.DisabledRule, c.DisabledFilter)
	if c.Membership != "" {
		lc.Membership = ldap.Membership(c.Membership)
	}
	setString(&lc.GroupBaseDN, c.GroupBaseDN)
	setString(&lc.GroupFilter, c.GroupFilter)
	lc.PoolSize, lc.Timeout = c.PoolSize, c.Timeout.Duration
	lc.Names, lc.Logger = names, log
	return lc, nil
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// overlayRule sets the parts of r that the configuration sets, keeping the
// preset's others (the AD preset's disabled bit and a disabled_group both
// apply).
func overlayRule(r *ldap.Rule, group string, attr directory.AttrRule, filter string) {
	setString(&r.Group, group)
	if !attr.IsZero() {
		r.Attribute = attr
	}
	setString(&r.Filter, filter)
}

// directoryPolicy sets the directory-independent policy of cfg.Directory
// on v: the MFA policy and the login names.
func directoryPolicy(cfg *config.Config, v *authn.Verifier) {
	v.MFA = authn.MFAPolicy(cfg.Directory.MFA)
	v.Names = directory.Names{DefaultDomain: cfg.Directory.DefaultDomain}
}

// useDirectory connects the core to the directory of cfg, if its kind is
// not store: the Verifier asks it, and the sessions are reconciled with it
// within its cache time.
func (c *core) useDirectory(cfg *config.Config, log *slog.Logger) error {
	if cfg.Directory.Kind == config.DirectoryStore {
		return nil
	}
	d, err := openDirectory(cfg, log)
	if err != nil {
		return err
	}
	c.closers = append(c.closers, d.close)
	c.v.Directory = &authn.Directory{Dir: c.metrics.Directory(d.dir), Kind: string(cfg.Directory.Kind), Admin: d.admin,
		CacheTTL: time.Duration(cfg.Directory.Cache)}
	c.sessions.Directory = c.v
	interval := c.sessions.RecheckInterval
	if interval <= 0 {
		interval = sessions.DefaultRecheckInterval
	}
	c.sessions.RecheckInterval = c.v.Directory.RecheckInterval(interval)
	log.Info("accounts from the directory", "kind", cfg.Directory.Kind, "at", d.where,
		"mfa", orDefault(cfg.Directory.MFA, string(authn.MFAGroup)), "reconcile_every", c.sessions.RecheckInterval)
	return nil
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
