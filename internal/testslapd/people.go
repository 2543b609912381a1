package testslapd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// Person is one user of People: an inetOrgPerson uid=UID,ou=people that
// logs in with Mail (or its UID) and Password, and is a member of the
// groups its flags name.
type Person struct {
	UID, Mail, Password  string
	MFA, Admin, Disabled bool
}

// ServicePassword is the password of People's service account,
// ServiceDN(suffix).
const ServicePassword = "passgate-service-secret"

// ServiceDN is the service account that passgate binds as to search.
func ServiceDN(suffix string) string { return "cn=passgate,ou=services," + suffix }

// PersonDN is the DN of the person with uid.
func PersonDN(suffix, uid string) string { return "uid=" + uid + ",ou=people," + suffix }

// GroupDN is the DN of one of People's groups: "mfa", "admins" or
// "disabled".
func GroupDN(suffix, name string) string { return "cn=" + name + ",ou=groups," + suffix }

// People returns an LDIF for suffix ("dc=example,dc=org") as the README's
// OpenLDAP example has it: ou=people with the persons, ou=groups with the
// groupOfNames cn=mfa, cn=admins and cn=disabled (the service account is a
// member of each, since a groupOfNames needs one), and ou=services with
// the service account.
func People(suffix string, persons ...Person) string {
	dc, _, _ := strings.Cut(strings.TrimPrefix(suffix, "dc="), ",")
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: %s\ndc: %s\n\n", suffix, dc, dc)
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, suffix, ou)
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: passgate\nuserPassword: %s\n\n",
		ServiceDN(suffix), ServicePassword)
	members := map[string][]string{}
	for _, p := range persons {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s\nuserPassword: %s\n\n",
			PersonDN(suffix, p.UID), p.UID, p.UID, p.UID, p.Mail, p.Password)
		for group, in := range map[string]bool{"mfa": p.MFA, "admins": p.Admin, "disabled": p.Disabled} {
			if in {
				members[group] = append(members[group], PersonDN(suffix, p.UID))
			}
		}
	}
	for _, group := range []string{"mfa", "admins", "disabled"} {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\nmember: %s\n", GroupDN(suffix, group), group, ServiceDN(suffix))
		for _, m := range members[group] {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// SetMember adds dn to one of People's groups (in) or removes it, as an
// operator does while passgate runs; the memberof overlay updates the
// person's memberOf.
func (s *Server) SetMember(t testing.TB, group, dn string, in bool) {
	t.Helper()
	req := ldap.NewModifyRequest(GroupDN(s.Suffix, group), nil)
	if in {
		req.Add("member", []string{dn})
	} else {
		req.Delete("member", []string{dn})
	}
	s.Modify(t, req)
}
