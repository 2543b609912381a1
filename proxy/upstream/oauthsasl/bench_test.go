package oauthsasl_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/passgate/passgate/proxy/upstream/oauthsasl"
)

// One login to the real Dovecot per op: TLS dial, greeting, AUTHENTICATE
// (with the initial response inline), close. The token comes from the
// cache (fetched once); Dovecot validates it locally as a JWT (RS256).
func BenchmarkDovecotLogin(b *testing.B) {
	d := startOAuthDovecot(b)
	host, port := hostPort(b, d.srv.IMAPSAddr)
	for name, client := range map[string]func() sasl.Client{
		"xoauth2":     func() sasl.Client { return oauthsasl.NewXOAuth2(alice, d.token(b, alice)) },
		"oauthbearer": func() sasl.Client { return oauthsasl.NewOAuthBearer(alice, d.token(b, alice), host, port) },
		"plain":       func() sasl.Client { return sasl.NewPlainClient("", alice, "alice-pw") },
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ic := dialIMAP(b, d)
				if reply, _ := ic.authenticate(client()); !strings.HasPrefix(reply, "OK") {
					b.Fatalf("login: %q", reply)
				}
				ic.c.Close()
			}
		})
	}
}
