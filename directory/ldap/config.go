package ldap

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/passgate/passgate/directory"
)

// Config configures an LDAP directory. Start from a preset (OpenLDAP,
// ActiveDirectory) or fill it in; New checks it and applies the defaults
// stated on each field.
type Config struct {
	// URL of the server: ldaps://host[:636], or ldap://host[:389] with
	// StartTLS. Plain ldap:// without StartTLS is refused unless the host
	// is a loopback address or AllowPlaintext is set, because every primary
	// password would cross the network in clear.
	URL string
	// StartTLS upgrades an ldap:// connection before anything is sent.
	StartTLS bool
	// TLS is the client TLS configuration (CA pool from ca_file, client
	// certificate). Nil: the system roots. An empty ServerName is taken
	// from the URL's host.
	TLS *tls.Config
	// AllowPlaintext permits ldap:// without StartTLS to a remote host.
	AllowPlaintext bool

	// BindDN and BindPassword are the service account that searches for
	// users. Empty BindDN: anonymous searches.
	BindDN       string
	BindPassword string

	// BaseDN is where users are searched (whole subtree). Required.
	BaseDN string
	// UserFilter finds the user. It must contain at least one of the
	// placeholders {user} (the normalised username), {local} (its part
	// before the last '@') or {domain}; each value is escaped with
	// RFC 4515 rules, so a login of "*)(uid=*" matches nothing. Required
	// (the presets set it).
	UserFilter string
	// UsernameAttribute, if set, names the attribute whose value is the
	// account's passgate username (e.g. "mail"), so that every login that
	// finds the entry (uid, sAMAccountName, userPrincipalName) is the same
	// passgate account. Empty: the normalised login.
	UsernameAttribute string
	// AddressAttributes list the entry's mail addresses (default ["mail"]).
	// Values of the form "smtp:addr" (proxyAddresses) count as addr; other
	// "type:value" forms (X500:, SIP:) are ignored.
	AddressAttributes []string

	// Disabled, MFA and Admin say which users are disabled, must use a
	// second factor, or may administer passgate. A zero Rule matches
	// nobody.
	Disabled, MFA, Admin Rule

	// Membership says how a Rule's Group is checked: MemberOf (default) or
	// GroupSearch.
	Membership Membership
	// GroupBaseDN is where GroupSearch looks for groups. Default: BaseDN.
	GroupBaseDN string
	// GroupFilter finds the groups of the user for GroupSearch; {dn} is
	// the user's DN (escaped). Default:
	// (|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))
	// For Active Directory's nested groups use
	// (member:1.2.840.113556.1.4.1941:={dn}) (LDAP_MATCHING_RULE_IN_CHAIN).
	GroupFilter string

	// DummyDN is the DN bound with the given password when no user matched,
	// so that an unknown user costs the same as a known one. It must not
	// exist. Default: "cn=passgate-no-such-user," + BaseDN.
	DummyDN string

	// PoolSize bounds the connections of each pool (the service account's
	// searches, the users' binds): at most this many requests of each kind
	// run at once, and as many idle connections are kept. Default 4.
	PoolSize int
	// Timeout bounds the connection set-up and each request. Default 5s.
	Timeout time.Duration

	// Names normalises logins before they are searched for.
	Names directory.Names
	// Logger receives connection errors (never a password). Nil: discard.
	Logger *slog.Logger
}

// Membership is how group membership is read.
type Membership string

const (
	// MemberOf reads the user's memberOf attribute (OpenLDAP's memberof
	// overlay, Active Directory): direct groups only, no extra request.
	MemberOf Membership = "memberof"
	// GroupSearch searches GroupBaseDN with GroupFilter: one extra request,
	// and with AD's in-chain matching rule it follows nested groups.
	GroupSearch Membership = "search"
)

// Rule selects users: a member of Group, or an entry that satisfies
// Attribute, or one that matches Filter. Several set fields are OR'ed.
type Rule struct {
	// Group is a group's DN; members match (see Config.Membership).
	Group string
	// Attribute is a directory.AttrRule on the user's entry:
	// "employeeType=admin", "userAccountControl&2", "passgateMFA".
	Attribute directory.AttrRule
	// Filter is an LDAP filter that the user's entry must match, evaluated
	// by the server (a base search on the user's DN: one extra request).
	// For what the other forms cannot say, e.g. AD nested groups
	// (memberOf:1.2.840.113556.1.4.1941:=cn=mfa,ou=groups,dc=example,dc=com).
	Filter string
}

// IsZero reports whether the rule is unset.
func (r Rule) IsZero() bool { return r.Group == "" && r.Attribute.IsZero() && r.Filter == "" }

// Defaults applied by New.
const (
	DefaultPoolSize    = 4
	DefaultTimeout     = 5 * time.Second
	DefaultGroupFilter = "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
)
