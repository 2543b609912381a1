package ldap

import (
	"fmt"

	"github.com/passgate/passgate/directory"
)

// OpenLDAP is the preset for OpenLDAP (and 389-ds) with inetOrgPerson users
// who log in with their mail address; group rules read memberOf (the
// memberof overlay). A site whose users log in with their uid sets
// UserFilter to "(&(objectClass=inetOrgPerson)(uid={local}))" and a
// DefaultDomain in Names.
func OpenLDAP() Config {
	return Config{
		UserFilter:        "(&(objectClass=inetOrgPerson)(mail={user}))",
		UsernameAttribute: "mail",
		AddressAttributes: []string{"mail"},
		Membership:        MemberOf,
	}
}

// ActiveDirectory is the preset for Active Directory: users log in with
// their sAMAccountName (plus Names.DefaultDomain), their
// userPrincipalName or their mail address (the filter must find the entry
// by its passgate username too: passgate looks accounts up by it), their
// passgate username is their mail attribute, their
// addresses are mail and the smtp: values of proxyAddresses, and the
// ACCOUNTDISABLE bit (0x2) of userAccountControl disables them. Group rules
// read memberOf (direct groups); for nested groups set Membership to
// GroupSearch and GroupFilter to (member:1.2.840.113556.1.4.1941:={dn}).
func ActiveDirectory() Config {
	return Config{
		UserFilter:        "(&(objectClass=user)(objectCategory=person)(|(sAMAccountName={local})(userPrincipalName={user})(mail={user})))",
		UsernameAttribute: "mail",
		AddressAttributes: []string{"mail", "proxyAddresses"},
		Membership:        MemberOf,
		Disabled:          Rule{Attribute: directory.AttrRule{Name: "userAccountControl", Mask: 2}},
	}
}

// Preset returns the named preset: "openldap" or "activedirectory" (also
// "ad").
func Preset(name string) (Config, error) {
	switch name {
	case "openldap":
		return OpenLDAP(), nil
	case "activedirectory", "ad":
		return ActiveDirectory(), nil
	}
	return Config{}, fmt.Errorf("unknown ldap preset %q (want openldap or activedirectory)", name)
}
