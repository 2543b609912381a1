package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testidp"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

// claims reads an access token's claims (the IdP signed it; what matters
// here is who it is for).
func claims(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatalf("access token is not a JWT: %v", err)
	}
	return c
}

func TestClientCredentialsWithSecret(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient("app", "s3cret")
	src := &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", ClientSecret: "s3cret", Scopes: MicrosoftAppScopes}
	tok, err := src.Fetch(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	c := claims(t, tok.AccessToken)
	if c["sub"] != "app" || c["aud"] != "https://outlook.office365.com" || c["email"] != nil {
		t.Errorf("app-only token claims %v", c)
	}

	src.ClientSecret = "wrong-secret"
	_, err = src.Fetch(t.Context(), alice)
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "invalid_client" || pe.Status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %v, want a ProviderError invalid_client", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error shows the secret: %v", err)
	}
	// One request each: no second try with the secret elsewhere.
	if n := idp.TokenRequests(testidp.GrantClientCredentials); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestClientCredentialsWithCertificate(t *testing.T) {
	idp := testidp.Start(t)
	dir := t.TempDir()
	cert, err := LoadCertificate(testcert.WriteRSA(t, dir, "app-"))
	if err != nil {
		t.Fatal(err)
	}
	idp.AddCertificateClient("app", cert.Leaf)
	src := &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", Certificate: cert, Scopes: MicrosoftAppScopes}
	// Twice: each assertion has its own jti, which the IdP refuses to see
	// twice.
	for range 2 {
		if _, err := src.Fetch(t.Context(), ""); err != nil {
			t.Fatalf("fetch with a client assertion: %v", err)
		}
	}

	other, err := LoadCertificate(testcert.WriteRSA(t, dir, "other-"))
	if err != nil {
		t.Fatal(err)
	}
	src.Certificate = other
	var pe *ProviderError
	if _, err := src.Fetch(t.Context(), ""); !errors.As(err, &pe) || pe.Code != "invalid_client" {
		t.Errorf("assertion signed by an unregistered certificate: %v, want invalid_client", err)
	}
}

func TestLoadCertificateRefusesNonRSAKeys(t *testing.T) {
	if _, err := LoadCertificate(testcert.Write(t, t.TempDir(), "ec-")); err == nil {
		t.Error("an ECDSA key was accepted for PS256 assertions")
	}
}

func TestServiceAccountActsForTheUser(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddUser(alice)
	sa, err := NewServiceAccount(idp.NewServiceAccount(t, "pg@test.iam.example", "1001"), GoogleMailScopes...)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sa.Fetch(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	c := claims(t, tok.AccessToken)
	if c["sub"] != alice || c["email"] != alice || c["azp"] != "1001" || c["scope"] != "https://mail.google.com/" {
		t.Errorf("delegated token claims %v", c)
	}
	// A user outside the domain is the admin's problem, not a relink.
	_, err = sa.Fetch(t.Context(), "mallory@example.com")
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Code != "invalid_grant" || errors.Is(err, ErrRelinkNeeded) {
		t.Errorf("unknown user: %v, want a ProviderError invalid_grant", err)
	}
}

// memStore is a RefreshStore in memory whose saves can be made to fail.
type memStore struct {
	mu        sync.Mutex
	tokens    map[string]string
	failSaves int
}

func (m *memStore) RefreshToken(_ context.Context, user string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rt, ok := m.tokens[user]
	if !ok {
		return "", ErrNotLinked
	}
	return rt, nil
}

func (m *memStore) SwapRefreshToken(_ context.Context, user, old, new string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSaves > 0 {
		m.failSaves--
		return errors.New("store down")
	}
	if m.tokens[user] != old {
		return nil
	}
	if new == "" {
		delete(m.tokens, user)
	} else {
		m.tokens[user] = new
	}
	return nil
}

func (m *memStore) get(user string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[user]
}

func delegated(t *testing.T) (*testidp.IdP, *memStore, *Delegated) {
	idp := testidp.Start(t)
	idp.AddUser(alice)
	idp.AddClient("web", "websecret")
	store := &memStore{tokens: map[string]string{alice: idp.Link("web", alice, "https://mail.google.com/")}}
	d := &Delegated{Store: store, Config: &oauth2.Config{ClientID: "web", ClientSecret: "websecret",
		Endpoint: oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}}
	return idp, store, d
}

func TestDelegatedSavesRotatedRefreshTokens(t *testing.T) {
	_, store, d := delegated(t)
	first := store.get(alice)
	for i := range 3 {
		tok, err := d.Fetch(t.Context(), alice)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if claims(t, tok.AccessToken)["email"] != alice {
			t.Fatalf("token not for alice")
		}
	}
	// The IdP rotates: each refresh worked only because the previous
	// rotated token had been saved.
	if now := store.get(alice); now == first || now == "" {
		t.Errorf("stored refresh token not rotated")
	}
}

func TestDelegatedRevokedAtProviderNeedsRelink(t *testing.T) {
	idp, store, d := delegated(t)
	idp.RevokeUser(alice)
	if _, err := d.Fetch(t.Context(), alice); !errors.Is(err, ErrRelinkNeeded) {
		t.Fatalf("revoked refresh token: %v, want ErrRelinkNeeded", err)
	}
	if store.get(alice) != "" {
		t.Error("the refused refresh token is still stored (the portal would show 'linked')")
	}
	before := idp.TokenRequests("")
	if _, err := d.Fetch(t.Context(), alice); !errors.Is(err, ErrRelinkNeeded) {
		t.Fatalf("after removal: %v, want ErrRelinkNeeded", err)
	}
	if idp.TokenRequests("") != before {
		t.Error("a user with no refresh token still costs a request to the provider")
	}
}

func TestDelegatedKeepsARotatedTokenTheStoreFailedToSave(t *testing.T) {
	_, store, d := delegated(t)
	old := store.get(alice)
	store.failSaves = 1
	if _, err := d.Fetch(t.Context(), alice); err != nil {
		t.Fatalf("refresh with the store down: %v", err)
	}
	if store.get(alice) != old {
		t.Fatal("the failed save changed the store")
	}
	// The IdP killed old when it rotated: only the kept token works.
	if _, err := d.Fetch(t.Context(), alice); err != nil {
		t.Fatalf("refresh after the store came back: %v", err)
	}
	if store.get(alice) == old {
		t.Error("the kept token was not saved when the store came back")
	}
}

func TestFetchErrorsSayWhatToTellTheClient(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient("app", "s")
	src := &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", ClientSecret: "s"}
	for _, tc := range []struct {
		status      int
		code        string
		unavailable bool
	}{
		{http.StatusServiceUnavailable, "", true},
		{http.StatusInternalServerError, "server_error", true},
		{http.StatusTooManyRequests, "", true},
		{http.StatusBadRequest, "temporarily_unavailable", true},
		{http.StatusBadRequest, "invalid_scope", false},
		{http.StatusUnauthorized, "unauthorized_client", false},
	} {
		idp.Fail(tc.status, tc.code)
		_, err := src.Fetch(t.Context(), "")
		var pe *ProviderError
		if got := errors.Is(err, ErrUnavailable); got != tc.unavailable || got == errors.As(err, &pe) {
			t.Errorf("HTTP %d %q: %v; want unavailable=%v, else a ProviderError", tc.status, tc.code, err, tc.unavailable)
		}
	}
	src.TokenURL = "http://127.0.0.1:1/token" // nothing listens
	if _, err := src.Fetch(t.Context(), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("connection refused: %v, want ErrUnavailable", err)
	}
}
