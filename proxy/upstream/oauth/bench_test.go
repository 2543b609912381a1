package oauth

import (
	"testing"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testidp"
)

// The fetch benchmarks include the test IdP's own work on the loopback
// (an RS256 signature per token): what passgate spends plus a fast
// provider; a real provider adds its network round trip.

func BenchmarkFetchClientSecret(b *testing.B) {
	idp := testidp.Start(b)
	idp.AddClient("app", "s")
	benchFetch(b, &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", ClientSecret: "s", Scopes: MicrosoftAppScopes})
}

func BenchmarkFetchClientAssertion(b *testing.B) {
	idp := testidp.Start(b)
	cert, err := LoadCertificate(testcert.WriteRSA(b, b.TempDir(), "app-"))
	if err != nil {
		b.Fatal(err)
	}
	idp.AddCertificateClient("app", cert.Leaf)
	benchFetch(b, &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", Certificate: cert, Scopes: MicrosoftAppScopes})
}

func BenchmarkFetchServiceAccount(b *testing.B) {
	idp := testidp.Start(b)
	idp.AddUser(alice)
	sa, err := NewServiceAccount(idp.NewServiceAccount(b, "pg@test.iam.example", "1001"), GoogleMailScopes...)
	if err != nil {
		b.Fatal(err)
	}
	benchFetch(b, sa)
}

func benchFetch(b *testing.B, src Source) {
	for b.Loop() {
		if _, err := src.Fetch(b.Context(), alice); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedToken(b *testing.B) {
	idp := testidp.Start(b)
	idp.AddClient("app", "s")
	cache := &Cache{Source: &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", ClientSecret: "s"}}
	for b.Loop() {
		if _, err := cache.Token(b.Context(), alice); err != nil {
			b.Fatal(err)
		}
	}
	if n := idp.TokenRequests(""); n != 1 {
		b.Fatalf("%d token requests", n)
	}
}
