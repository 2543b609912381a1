package imapdir_test

import (
	"testing"

	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/internal/testdovecot"
)

// BenchmarkIMAP measures logins to a private Dovecot over STARTTLS, each
// from a client address of its own (see clients).
func BenchmarkIMAP(b *testing.B) {
	a := newAccounts()
	s := testdovecot.Start(b, a.String())
	dirtest.Bench(b, dirtest.Fixture{
		Dir: clients{newDir(b, config(s, b))}, Plain: user("alice"), Unknown: "nobody-here", NoLookup: true,
	})
}
