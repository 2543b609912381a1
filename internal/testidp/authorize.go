package testidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	grant
	redirect  string
	challenge string // PKCE S256 code challenge
	nonce     string
	expires   time.Time
}

func randText() string { return rand.Text() }

// authorize is the authorization endpoint (RFC 6749 §4.1.1 with PKCE, RFC
// 7636). Consent is automatic: the user is login_hint, or the one SignIn
// named. Redirect URIs must be on the loopback.
func (p *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || !slices.Contains([]string{"127.0.0.1", "localhost", "[::1]"}, redirect.Hostname()) {
		http.Error(w, "redirect_uri must be http on the loopback", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fail := func(code, desc string) {
		v := redirect.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		v.Set("state", q.Get("state"))
		redirect.RawQuery = v.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}
	user := q.Get("login_hint")
	if user == "" {
		user = p.signedIn
	}
	switch {
	case p.clients[q.Get("client_id")] == nil:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only code")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with S256 is required")
		return
	case !p.users[user]:
		fail("access_denied", "no such user")
		return
	}
	code := "code-" + rand.Text()
	p.codes[code] = codeGrant{
		grant:    grant{client: q.Get("client_id"), user: user, scope: q.Get("scope")},
		redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		expires: p.now().Add(time.Minute),
	}
	v := redirect.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// exchangeCodeLocked redeems an authorization code once (RFC 6749 §4.1.3),
// checking the redirect URI and the PKCE verifier.
func (p *IdP) exchangeCodeLocked(clientID string, form url.Values) (map[string]any, *oauthError) {
	code := form.Get("code")
	cg, ok := p.codes[code]
	delete(p.codes, code)
	switch {
	case !ok || cg.client != clientID || !p.now().Before(cg.expires):
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "code unknown, used, expired or of another client")
	case cg.redirect != form.Get("redirect_uri"):
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "redirect_uri differs")
	case pkceChallenge(form.Get("code_verifier")) != cg.challenge:
		return nil, errorf(http.StatusBadRequest, "invalid_grant", "PKCE verifier does not match")
	}
	resp := p.issueLocked(cg.grant, true)
	if slices.Contains(strings.Fields(cg.scope), "openid") {
		now := p.now()
		resp["id_token"] = p.signLocked(p.idClaimsLocked(cg.user, map[string]any{
			"iss": p.Issuer(), "aud": clientID, "sub": cg.user, "email": cg.user, "email_verified": true,
			"nonce": cg.nonce, "iat": now.Unix(), "exp": now.Add(p.accessTTL).Unix(), "amr": []string{"pwd", "mfa"},
		}))
	}
	return resp, nil
}

// pkceChallenge is RFC 7636 §4.2's S256: BASE64URL(SHA256(verifier)).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// revoke is the revocation endpoint (RFC 7009) for refresh tokens; it
// answers 200 whether or not the token was known (§2.2).
func (p *IdP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, oerr := p.authenticateLocked(r, true); oerr != nil {
		writeJSON(w, oerr.status, map[string]string{"error": oerr.code})
		return
	}
	delete(p.refresh, r.PostForm.Get("token"))
	w.WriteHeader(http.StatusOK)
}
