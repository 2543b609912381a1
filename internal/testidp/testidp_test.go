package testidp_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/passgate/passgate/internal/testidp"
)

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
}

// The discovery document leads to a JWKS whose key verifies the tokens,
// and it is the key PublicKeyPEM gives resource servers.
func TestDiscoveryAndJWKS(t *testing.T) {
	idp := testidp.Start(t)
	var disc struct {
		Issuer   string   `json:"issuer"`
		Token    string   `json:"token_endpoint"`
		Authz    string   `json:"authorization_endpoint"`
		JWKSURI  string   `json:"jwks_uri"`
		Challeng []string `json:"code_challenge_methods_supported"`
	}
	getJSON(t, idp.Issuer()+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != idp.Issuer() || disc.Token != idp.TokenURL() || disc.Authz != idp.AuthURL() {
		t.Fatalf("discovery %+v", disc)
	}
	var jwks struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	getJSON(t, disc.JWKSURI, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != idp.KeyID() {
		t.Fatalf("jwks %+v", jwks)
	}
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	fromJWKS := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	block, _ := pem.Decode(idp.PublicKeyPEM())
	fromPEM, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil || !fromJWKS.Equal(fromPEM) {
		t.Fatalf("JWKS key and PublicKeyPEM differ (%v)", err)
	}
}

// noRedirect captures the authorization endpoint's redirect.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func authorize(t *testing.T, u string) url.Values {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	return loc.Query()
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddUser("alice@example.com")
	idp.AddPublicClient("portal")
	cfg := &oauth2.Config{ClientID: "portal", RedirectURL: "http://127.0.0.1:9/callback", Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: idp.AuthURL(), TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("login_hint", "alice@example.com"), oauth2.SetAuthURLParam("nonce", "n0nce")))
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	if _, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption("wrong-verifier-"+verifier)); err == nil {
		t.Fatal("a wrong PKCE verifier was accepted")
	}
	// The failed attempt used the code up, as a stolen code would be.
	q = authorize(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", "alice@example.com"),
		oauth2.SetAuthURLParam("nonce", "n0nce")))
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a code was redeemed twice")
	}
	raw, _ := tok.Extra("id_token").(string)
	block, _ := pem.Decode(idp.PublicKeyPEM())
	pub, _ := x509.ParsePKIXPublicKey(block.Bytes)
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithIssuer(idp.Issuer()), jwt.WithAudience("portal"), jwt.WithValidMethods([]string{"RS256"})); err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if claims["email"] != "alice@example.com" || claims["nonce"] != "n0nce" {
		t.Errorf("id_token claims %v", claims)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
}

func TestAuthorizeRefusesWithoutPKCEOrUser(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddUser("alice@example.com")
	idp.AddPublicClient("portal")
	cfg := &oauth2.Config{ClientID: "portal", RedirectURL: "http://127.0.0.1:9/cb",
		Endpoint: oauth2.Endpoint{AuthURL: idp.AuthURL(), TokenURL: idp.TokenURL()}}
	if q := authorize(t, cfg.AuthCodeURL("s", oauth2.SetAuthURLParam("login_hint", "alice@example.com"))); q.Get("error") != "invalid_request" {
		t.Errorf("without PKCE: %v", q)
	}
	if q := authorize(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); q.Get("error") != "access_denied" {
		t.Errorf("nobody signed in: %v", q)
	}
	cfg.RedirectURL = "https://attacker.example/cb"
	resp, err := noRedirect.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("redirect off the loopback: %s", resp.Status)
	}
}

func TestRevocationEndpointKillsTheRefreshToken(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient("web", "s")
	rt := idp.Link("web", "alice@example.com", "mail")
	resp, err := http.PostForm(idp.Issuer()+"/revoke", url.Values{"token": {rt}, "client_id": {"web"}, "client_secret": {"s"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	cfg := &oauth2.Config{ClientID: "web", ClientSecret: "s", Endpoint: oauth2.Endpoint{TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	_, err = cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: rt}).Token()
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after revocation: %v, want invalid_grant", err)
	}
	if n := idp.TokenRequests(testidp.GrantRefreshToken); n != 1 {
		t.Errorf("%d refresh requests counted, want 1", n)
	}
}

// SetIDClaims replaces, adds and removes claims of one user's ID tokens
// only, until it is reset with nil.
func TestSetIDClaims(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddUser("alice@example.com", "bob@example.com")
	idp.AddClient("portal", "secret")
	cfg := &oauth2.Config{ClientID: "portal", ClientSecret: "secret", RedirectURL: "http://127.0.0.1:9/callback",
		Scopes:   []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: idp.AuthURL(), TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	idClaims := func(user string) jwt.MapClaims {
		t.Helper()
		v := oauth2.GenerateVerifier()
		q := authorize(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("login_hint", user)))
		tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(tok.Extra("id_token").(string), claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	idp.SetIDClaims("alice@example.com", map[string]any{"aud": "another-client", "amr": nil, "groups": []string{"mail-admins"}})
	a, b := idClaims("alice@example.com"), idClaims("bob@example.com")
	if _, hasAMR := a["amr"]; a["aud"] != "another-client" || hasAMR || a["groups"] == nil || a["email"] != "alice@example.com" {
		t.Errorf("alice's changed claims: %v", a)
	}
	if b["aud"] != "portal" || b["amr"] == nil || b["groups"] != nil {
		t.Errorf("bob's claims changed too: %v", b)
	}
	idp.SetIDClaims("alice@example.com", nil)
	if a := idClaims("alice@example.com"); a["aud"] != "portal" || a["amr"] == nil {
		t.Errorf("claims after the reset: %v", a)
	}
}
