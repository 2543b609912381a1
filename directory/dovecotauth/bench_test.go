package dovecotauth_test

import (
	"testing"

	"github.com/passgate/passgate/directory/dirtest"
	"github.com/passgate/passgate/internal/testdovecot"
)

// BenchmarkDovecot measures the directory against a private Dovecot over
// its UNIX and TCP auth sockets. Dovecot 2.3 holds every failure back for
// at least 0.5 s (auth_failure_delay, 2 s by default), which the wrong and
// unknown figures show.
func BenchmarkDovecot(b *testing.B) {
	a := newAccounts()
	s := testdovecot.Start(b, a.String())
	b.Run("unix", func(b *testing.B) {
		dirtest.Bench(b, fixture(s, a, newDir(b, config(s.AuthSocket, s.UserdbSocket))))
	})
	b.Run("tcp", func(b *testing.B) {
		dirtest.Bench(b, fixture(s, a, newDir(b, config(s.AuthAddr, s.UserdbAddr))))
	})
}
