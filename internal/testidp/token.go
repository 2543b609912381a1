package testidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errorf(status int, code, format string, args ...any) *oauthError {
	return &oauthError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

// token is the token endpoint (RFC 6749 §3.2).
func (p *IdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	gt := r.PostForm.Get("grant_type")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[""]++
	p.counts[gt]++
	if f := p.fail; f != nil {
		if f.code == "" {
			w.WriteHeader(f.status)
			return
		}
		writeJSON(w, f.status, map[string]string{"error": f.code, "error_description": "failure injected by the test"})
		return
	}
	resp, oerr := p.grantLocked(r, gt)
	if oerr != nil {
		writeJSON(w, oerr.status, map[string]string{"error": oerr.code, "error_description": oerr.desc})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *IdP) grantLocked(r *http.Request, gt string) (map[string]any, *oauthError) {
	if gt == GrantJWTBearer {
		// The assertion is the client's authentication (RFC 7523 §2.1).
		return p.jwtBearerLocked(r)
	}
	clientID, oerr := p.authenticateLocked(r, gt == GrantAuthorizationCode)
	if oerr != nil {
		return nil, oerr
	}
	switch gt {
	case GrantClientCredentials:
		scope := r.PostForm.Get("scope")
		return p.issueLocked(grant{client: clientID, scope: scope}, false), nil
	case GrantRefreshToken:
		return p.refreshLocked(clientID, r.PostForm.Get("refresh_token"))
	case GrantAuthorizationCode:
		return p.exchangeCodeLocked(clientID, r.PostForm)
	}
	return nil, errorf(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q", gt)
}

// authenticateLocked checks the client's credentials: HTTP Basic,
// client_secret in the body, or a private_key_jwt assertion (RFC 7523
// §2.2). A public client may send only its id when allowPublic.
func (p *IdP) authenticateLocked(r *http.Request, allowPublic bool) (string, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return p.clientAssertionLocked(id, r.PostForm.Get("client_assertion"))
	}
	c, ok := p.clients[id]
	switch {
	case !ok:
		return "", errorf(http.StatusUnauthorized, "invalid_client", "unknown client")
	case c.public && allowPublic && secret == "":
		return id, nil
	case c.secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1:
		return "", errorf(http.StatusUnauthorized, "invalid_client", "bad client credentials")
	}
	return id, nil
}

// clientAssertionLocked verifies a client assertion the way Microsoft's
// certificate credentials are checked: signed by the registered
// certificate's key (PS256 or RS256), x5t#S256 its thumbprint, iss = sub =
// client id, aud the token endpoint, not expired, jti never seen before.
func (p *IdP) clientAssertionLocked(id, assertion string) (string, *oauthError) {
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		c, ok := p.clients[iss]
		if !ok || c.cert == nil {
			return nil, fmt.Errorf("no certificate for client %q", iss)
		}
		thumb := sha256.Sum256(c.cert.Raw)
		if t.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(thumb[:]) {
			return nil, fmt.Errorf("x5t#S256 is not the registered certificate's")
		}
		return c.cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithAudience(p.TokenURL()),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(p.now))
	if err != nil || !tok.Valid {
		return "", errorf(http.StatusUnauthorized, "invalid_client", "client assertion: %v", err)
	}
	if claims.Subject != claims.Issuer || (id != "" && id != claims.Issuer) {
		return "", errorf(http.StatusUnauthorized, "invalid_client", "client assertion: iss, sub and client_id differ")
	}
	if claims.ID == "" || p.jtis[claims.ID] {
		return "", errorf(http.StatusUnauthorized, "invalid_client", "client assertion: jti missing or replayed")
	}
	p.jtis[claims.ID] = true
	return claims.Issuer, nil
}

// jwtBearerLocked is the JWT bearer grant of a service account (RFC 7523
// §2.1, as Google's domain-wide delegation uses it): iss the account,
// sub the user, signed by the account's key, aud the token endpoint.
func (p *IdP) jwtBearerLocked(r *http.Request) (map[string]any, *oauthError) {
	var sa *serviceAccount
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		var ok bool
		if sa, ok = p.accounts[iss]; !ok {
			return nil, fmt.Errorf("unknown service account %q", iss)
		}
		if t.Header["kid"] != sa.keyID {
			return nil, fmt.Errorf("kid is not the account's key")
		}
		return sa.key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(p.TokenURL()),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(p.now))
	if err != nil || !tok.Valid {
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "assertion: %v", err)
	}
	user, _ := claims.GetSubject()
	if !p.users[user] {
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "Invalid email or User ID")
	}
	scope, _ := claims["scope"].(string)
	if scope == "" {
		return nil, errorf(http.StatusBadRequest, "invalid_scope", "no scope")
	}
	return p.issueLocked(grant{client: sa.clientID, user: user, scope: scope}, false), nil
}

func (p *IdP) refreshLocked(clientID, rt string) (map[string]any, *oauthError) {
	g, ok := p.refresh[rt]
	if !ok || g.client != clientID {
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "refresh token revoked, expired or unknown")
	}
	resp := p.issueLocked(g, false)
	if !p.noRotate {
		delete(p.refresh, rt)
		resp["refresh_token"] = p.newRefreshLocked(g)
	}
	return resp, nil
}

// issueLocked makes the token response: a signed access token, a refresh
// token if withRefresh, an ID token if the scope has openid.
func (p *IdP) issueLocked(g grant, withRefresh bool) map[string]any {
	ttl := p.accessTTL
	resp := map[string]any{
		"access_token": p.signLocked(p.accessClaims(g, p.now(), ttl)),
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
		"scope":        g.scope,
	}
	if withRefresh {
		resp["refresh_token"] = p.newRefreshLocked(g)
	}
	return resp
}

// accessClaims are an access token's claims. A user's token names the
// user in sub and email (what Dovecot's oauth2 passdb compares with the
// login name); an application's names the client in sub. azp is the
// client (Dovecot's local validation looks the key up under it).
func (p *IdP) accessClaims(g grant, now time.Time, ttl time.Duration) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": p.Issuer(), "aud": audience(g.scope), "azp": g.client, "scope": g.scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": "at-" + randText(),
		"sub": g.client,
	}
	if g.user != "" {
		c["sub"], c["email"] = g.user, g.user
	}
	return c
}

// audience is the resource a scope names: its URL before the last path
// element for Microsoft-style scopes, else the scope itself.
func audience(scope string) string {
	first, _, _ := strings.Cut(scope, " ")
	if i := strings.LastIndex(first, "/"); i > len("https://") && strings.HasPrefix(first, "https://") {
		return first[:i]
	}
	return first
}

func (p *IdP) signLocked(claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = p.keyID
	s, err := tok.SignedString(p.key)
	if err != nil {
		panic(err) // RS256 with a valid key does not fail
	}
	return s
}

// Mint signs an access token for user and client directly, issued at iat
// and living ttl (negative: already expired), for tests of what a resource
// server accepts.
func (p *IdP) Mint(clientID, user, scope string, iat time.Time, ttl time.Duration) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signLocked(p.accessClaims(grant{client: clientID, user: user, scope: scope}, iat, ttl))
}
