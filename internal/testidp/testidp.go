// Package testidp is an OAuth 2.0 / OpenID Connect identity provider for
// tests, on 127.0.0.1: it signs real JWTs (RS256), serves its JWKS and
// discovery document, issues tokens for the client credentials grant
// (client secret or private_key_jwt assertion), the JWT bearer grant (a
// Google-style service account with the user as subject), the refresh
// token grant (rotating, revocable) and the authorization code grant with
// PKCE (consent is automatic), and counts the token requests it answers.
//
//	idp := testidp.Start(t)
//	idp.AddUser("alice@example.com")
//	idp.AddClient("app", "secret")
//	cfg := clientcredentials.Config{ClientID: "app", ClientSecret: "secret", TokenURL: idp.TokenURL()}
//	// ... idp.TokenRequests("client_credentials") == 1
//
// It is not a secure IdP (it trusts every redirect URI on the loopback,
// consents for anyone named by login_hint) and must only serve tests.
package testidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Grant types, as sent in grant_type and counted by TokenRequests.
const (
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
)

// IdP is a running identity provider. Its methods are safe for concurrent
// use with the requests it serves.
type IdP struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	keyID string

	mu        sync.Mutex
	now       func() time.Time
	accessTTL time.Duration
	noRotate  bool
	fail      *failure
	users     map[string]bool
	clients   map[string]*client
	accounts  map[string]*serviceAccount // by email
	refresh   map[string]grant           // live refresh tokens
	codes     map[string]codeGrant
	jtis      map[string]bool           // client assertions seen (replay)
	counts    map[string]int            // token requests by grant type
	signedIn  string                    // the user the authorize endpoint consents for
	idClaims  map[string]map[string]any // SetIDClaims, by user
}

type client struct {
	secret string
	cert   *x509.Certificate // for private_key_jwt assertions
	public bool              // PKCE without a secret
}

type serviceAccount struct {
	clientID string
	keyID    string
	key      *rsa.PublicKey
}

// grant is what a refresh token or a code stands for.
type grant struct {
	client, user, scope string
}

type failure struct {
	status int
	code   string
}

// Start starts an IdP on 127.0.0.1, stopped when the test ends. Access
// tokens live an hour unless SetAccessTTL says otherwise.
func Start(t testing.TB) *IdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testidp: key: %v", err)
	}
	p := &IdP{
		key: key, keyID: "k" + rand.Text()[:8], now: time.Now, accessTTL: time.Hour,
		users: map[string]bool{}, clients: map[string]*client{}, accounts: map[string]*serviceAccount{},
		refresh: map[string]grant{}, codes: map[string]codeGrant{}, jtis: map[string]bool{}, counts: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /revoke", p.revoke)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer is the IdP's URL, the iss of its tokens.
func (p *IdP) Issuer() string { return p.srv.URL }

// TokenURL is the token endpoint.
func (p *IdP) TokenURL() string { return p.srv.URL + "/token" }

// AuthURL is the authorization endpoint.
func (p *IdP) AuthURL() string { return p.srv.URL + "/authorize" }

// KeyID is the kid of the signing key.
func (p *IdP) KeyID() string { return p.keyID }

// PublicKeyPEM is the signing key's public half (PKIX, PEM), as a resource
// server that validates tokens locally needs it.
func (p *IdP) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// AddUser makes users known (subjects of delegation, authorize sign-ins).
func (p *IdP) AddUser(users ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range users {
		p.users[u] = true
	}
}

// AddClient registers a confidential client with a secret.
func (p *IdP) AddClient(id, secret string) { p.setClient(id, &client{secret: secret}) }

// AddPublicClient registers a client without a secret (PKCE only).
func (p *IdP) AddPublicClient(id string) { p.setClient(id, &client{public: true}) }

// AddCertificateClient registers a client that authenticates with
// assertions signed by cert's key (private_key_jwt).
func (p *IdP) AddCertificateClient(id string, cert *x509.Certificate) {
	p.setClient(id, &client{cert: cert})
}

func (p *IdP) setClient(id string, c *client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[id] = c
}

// SetAccessTTL sets the lifetime of the access tokens issued from now on.
func (p *IdP) SetAccessTTL(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accessTTL = d
}

// SetNow sets the IdP's clock (iat, exp, assertion checks).
func (p *IdP) SetNow(now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = now
}

// SetRotation says whether a refresh makes a new refresh token and kills
// the old one (the default, as Microsoft does) or keeps it (as Google).
func (p *IdP) SetRotation(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noRotate = !on
}

// Fail makes every token request fail with HTTP status and the RFC 6749
// error code (empty: no JSON body) until Fail(0, "").
func (p *IdP) Fail(status int, code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = nil
	if status != 0 {
		p.fail = &failure{status: status, code: code}
	}
}

// SignIn sets the user the authorization endpoint consents for when the
// request has no login_hint.
func (p *IdP) SignIn(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signedIn = user
}

// TokenRequests counts the token requests answered for grant type grant
// ("" counts all of them, including refused ones).
func (p *IdP) TokenRequests(grant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[grant]
}

// Link issues a refresh token for user and client as if the user had
// consented in the authorization code flow (what the portal's link flow
// ends with).
func (p *IdP) Link(clientID, user, scope string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newRefreshLocked(grant{client: clientID, user: user, scope: scope})
}

// RevokeUser kills every refresh token of user (the user revoked the
// application's access, or an admin reset the account).
func (p *IdP) RevokeUser(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for rt, g := range p.refresh {
		if g.user == user {
			delete(p.refresh, rt)
		}
	}
}

func (p *IdP) newRefreshLocked(g grant) string {
	rt := "rt-" + rand.Text()
	p.refresh[rt] = g
	return rt
}

func (p *IdP) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := p.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": p.keyID,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (p *IdP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer(),
		"authorization_endpoint":                p.AuthURL(),
		"token_endpoint":                        p.TokenURL(),
		"revocation_endpoint":                   p.srv.URL + "/revoke",
		"jwks_uri":                              p.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantJWTBearer},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
