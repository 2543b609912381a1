package upstream

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/passgate/passgate/internal/demomail"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
)

// BenchmarkIMAPLogin is one upstream login (dial, greeting, TLS as
// configured, the login, the post-login capabilities) and the close of the
// handed-over connection: against the in-process demo server, and against
// a real Dovecot over plain TCP, STARTTLS and implicit TLS, each without
// and with a pool of ready connections (-pool: the dial, greeting and TLS
// run in the background). The Dovecot cases need Dovecot and root
// (skipped without, failed when CI=true).
//
//	go test -run '^$' -bench IMAPLogin -benchtime 2s ./proxy/upstream
func BenchmarkIMAPLogin(b *testing.B) {
	const master, secret, user = "bench-master", "bench-master-secret", "alice@example.org"
	mail, err := demomail.Start(master, secret, []string{user})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mail.Close() })
	b.Run("demomail", func(b *testing.B) {
		benchLogin(b, &IMAP{Address: mail.IMAPAddr().String(), Mode: ModeLoginMaster, MasterUser: master, MasterSecret: secret},
			Login{Username: user})
	})

	var pw testdovecot.Passwd
	pw.Set("alice", userPassword, "")
	d := testdovecot.Start(b, pw.String())
	conf := &tls.Config{RootCAs: testcert.Pool(b, d.CertFile), ServerName: "localhost"}
	login := Login{Username: "alice", Password: userPassword}
	for _, c := range []struct {
		name, addr string
		mode       TLSMode
	}{{"dovecot-plain", d.IMAPAddr, TLSNone}, {"dovecot-starttls", d.IMAPAddr, TLSStartTLS}, {"dovecot-tls", d.IMAPSAddr, TLSImplicit}} {
		for _, pool := range []int{0, DefaultPool} {
			name := c.name
			if pool > 0 {
				name += "-pool"
			}
			b.Run(name, func(b *testing.B) {
				u := Config{Address: c.addr, TLS: c.mode, TLSConfig: conf, Mode: ModePassthrough, Pool: pool}.IMAP()
				defer u.Close()
				benchLogin(b, u, login)
			})
		}
	}
}

func benchLogin(b *testing.B, u *IMAP, l Login) {
	ctx := context.Background()
	for b.Loop() {
		c, err := u.Login(ctx, l)
		if err != nil {
			b.Fatalf("Login: %v", err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
