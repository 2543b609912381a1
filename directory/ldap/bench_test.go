package ldap_test

import (
	"crypto/tls"
	"testing"

	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/internal/testcert"
)

// BenchmarkOpenLDAP measures the directory against a private slapd, over
// plain LDAP on loopback and over LDAPS.
func BenchmarkOpenLDAP(b *testing.B) {
	s := startSlapd(b)
	people := [5]string{"alice", "erin", "bob", "carol", "dave"}
	b.Run("ldap", func(b *testing.B) {
		c := openLDAPConfig(s)
		d := newDir(b, c)
		dirtest.Bench(b, fixture(s, c, d, nil, people))
	})
	b.Run("ldaps", func(b *testing.B) {
		c := openLDAPConfig(s)
		c.URL, c.TLS = s.LDAPSURL, &tls.Config{RootCAs: testcert.Pool(b, s.CertFile)}
		d := newDir(b, c)
		dirtest.Bench(b, fixture(s, c, d, nil, people))
	})
}
