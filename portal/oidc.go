package portal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// OIDCConfig is the sign-in with the organisation's OpenID Connect
// provider (Microsoft Entra ID, Google, any other): "Sign in with ..." on
// the sign-in page runs the authorization code flow with PKCE; the ID
// token (issuer, audience, expiry, nonce verified by go-oidc and here)
// names the user, who gets an account at the first sign-in.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at the first sign-in (and again until it answers). Required.
	Issuer string
	// ClientID and ClientSecret are the portal's client at the provider.
	// The redirect URI is BaseURL's origin + /signin/oidc/callback.
	ClientID, ClientSecret string
	// Scopes requested; nil: openid, email, profile.
	Scopes []string
	// UsernameClaim is the claim that holds the username; "" = "email".
	UsernameClaim string
	// AllowedDomains, if set, are the only username domains let in.
	AllowedDomains []string
	// RequiredAMR, RequiredACR: if either is set, the token must show
	// multi-factor authentication (amr holds one of RequiredAMR, acr is
	// one of RequiredACR; both if both are set), and then counts as the
	// second factor: no TOTP step. Unset: the account's own TOTP policy
	// applies after the provider's sign-in.
	RequiredAMR, RequiredACR []string
	// AdminClaim and AdminValue, if set, give the admin role to users
	// whose token's AdminClaim holds AdminValue and take it from others.
	AdminClaim, AdminValue string
	// ButtonLabel is the button's text; "" = "Sign in with your
	// organisation".
	ButtonLabel string
	// HTTPClient makes the requests to the provider; nil:
	// http.DefaultClient.
	HTTPClient *http.Client
}

// Texts of OIDC sign-in failures.
const (
	msgFlowExpired    = "This sign-in is no longer valid: it took too long, was already used, or was started in another browser or tab. Sign in again."
	msgTooManyFlows   = "Too many sign-ins were started from your network. Wait a few minutes, then try again."
	msgProviderDown   = "The sign-in service cannot be reached right now. Try again in a minute."
	msgProviderRefuse = "The sign-in service refused the sign-in. Try again; if it keeps failing, tell your administrator."
)

// mechOIDC is the audit mechanism of a sign-in through the provider.
const mechOIDC = "oidc"

// oidcRoutes registers the OpenID Connect sign-in and the mailbox link,
// when configured.
func (s *Server) oidcRoutes(mux *http.ServeMux) {
	if s.OIDC != nil {
		mux.HandleFunc("GET /signin/oidc", s.oidcStart)
		mux.HandleFunc("GET "+callbackSignIn, s.oidcCallback)
	}
	if s.Link != nil {
		mux.HandleFunc("GET /mailbox", s.need(stageFull, s.mailboxPage))
		mux.HandleFunc("GET /mailbox/link", s.need(stageFull, s.linkStart))
		mux.HandleFunc("GET "+callbackLink, s.need(stageFull, s.linkCallback))
	}
}

// signInLabel is the OIDC button's text, "" without OIDC.
func (s *Server) signInLabel() string {
	switch {
	case s.OIDC == nil:
		return ""
	case s.OIDC.ButtonLabel != "":
		return s.OIDC.ButtonLabel
	}
	return "Sign in with your organisation"
}

// idpState is the provider as discovery found it, kept once found.
type idpState struct {
	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// discover returns the provider's client and ID token verifier, reading
// its discovery document the first time (and again after a failure).
func (s *Server) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	st := s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.oauth != nil {
		return st.oauth, st.verifier, nil
	}
	c := s.OIDC
	if c.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, c.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("discover %s: %w: %w", c.Issuer, errProviderDown, err)
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	st.oauth = &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.redirectURI(callbackSignIn), Scopes: scopes}
	st.oauth.Endpoint.AuthStyle = authStyle(p)
	st.verifier = p.Verifier(&oidc.Config{ClientID: c.ClientID, Now: s.now})
	return st.oauth, st.verifier, nil
}

// authStyle is how the client authenticates at the token endpoint: the
// secret in the body where the provider supports it (Microsoft documents
// it; Basic needs the secret form-encoded, which some servers do not
// undo), else HTTP Basic, the default of OpenID Connect Discovery §3. Set
// once, so that no request is sent twice to find out.
func authStyle(p *oidc.Provider) oauth2.AuthStyle {
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if p.Claims(&meta) == nil && slices.Contains(meta.Methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// oidcStart sends the browser to the provider with a new pre-session.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	if rc, err := s.loadSession(r); err == nil && rc.stage == stageFull {
		s.redirect(w, r, stageHome(rc.stage))
		return
	}
	cfg, _, err := s.discover(r.Context())
	if err != nil {
		s.logger().WarnContext(r.Context(), "portal: identity provider unavailable", "err", err)
		s.signinError(w, r, http.StatusServiceUnavailable, msgProviderDown)
		return
	}
	f, err := s.startFlow(w, r, flowSignIn, "")
	if errors.Is(err, errTooManyFlows) {
		s.signinError(w, r, http.StatusTooManyRequests, msgTooManyFlows)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.toProvider(w, cfg.AuthCodeURL(f.State, authParams(f)...))
}

// oidcCallback ends the flow: the code is redeemed, the ID token
// verified, its claims checked, the account found or created, and a
// session started at the stage the account's policy asks for.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := s.takeFlow(w, r, flowSignIn, q.Get("state"))
	if errors.Is(err, errNoFlow) {
		s.signinError(w, r, http.StatusBadRequest, msgFlowExpired)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if code := callbackError(q); code != "" {
		s.logger().InfoContext(ctx, "portal: OIDC sign-in not completed at the provider", "error", code,
			"description", clean(q.Get("error_description"), 200))
		s.signinError(w, r, http.StatusUnauthorized, "The sign-in did not complete at the sign-in service ("+code+"). Try again.")
		return
	}
	claims, err := s.verifiedClaims(ctx, q.Get("code"), f)
	if err != nil {
		s.logger().WarnContext(ctx, "portal: OIDC sign-in refused", "remote", s.remoteAddr(r).Addr().String(), "err", err)
		switch {
		case errors.Is(err, errProviderDown):
			s.signinError(w, r, http.StatusServiceUnavailable, msgProviderDown)
		default:
			s.signinError(w, r, http.StatusUnauthorized, msgProviderRefuse)
		}
		return
	}
	id, refused := s.OIDC.identity(claims, s.OIDC.Issuer)
	if refused != nil {
		s.logger().InfoContext(ctx, "portal: OIDC sign-in refused", "user", id.user, "remote", s.remoteAddr(r).Addr().String(),
			"reason", refused.result)
		if refused.result != "" {
			s.audit(ctx, store.AuditRecord{Protocol: string(ProtocolPortal), Username: id.user, Remote: s.remoteAddr(r),
				Client: userAgent(r), Mechanism: mechOIDC, Result: refused.result})
		}
		s.signinError(w, r, http.StatusForbidden, refused.msg)
		return
	}
	s.oidcSignIn(w, r, id)
}

// verifiedClaims redeems code and returns the claims of the ID token,
// verified: signature (the provider's JWKS), issuer, audience (and azp if
// there are several), expiry (go-oidc), and the flow's nonce.
func (s *Server) verifiedClaims(ctx context.Context, code string, f flow) (map[string]any, error) {
	cfg, verifier, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := exchange(ctx, cfg, s.OIDC.HTTPClient, code, f.Verifier)
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the token response has no ID token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, errors.New("ID token: the nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("ID token: %w", err)
	}
	// OpenID Connect Core §3.1.3.7 (4, 5): with several audiences, azp
	// must be this client.
	if azp, _ := claims["azp"].(string); len(idt.Audience) > 1 && azp != s.OIDC.ClientID {
		return nil, errors.New("ID token: several audiences, and azp is not this client")
	}
	return claims, nil
}

// oidcSignIn signs in the user the provider vouched for: the account is
// created at the first sign-in (no primary password) and its admin role
// follows the token if configured; MFA shown by the provider replaces the
// TOTP step, else the account's own policy applies.
func (s *Server) oidcSignIn(w http.ResponseWriter, r *http.Request, id oidcIdentity) {
	ctx := r.Context()
	who := account.Actor{Door: account.DoorPortal, Name: id.user, Remote: s.remoteAddr(r), Client: userAgent(r)}
	acct, err := s.oidcAccount(ctx, who, id)
	var fe *account.FieldError
	if errors.As(err, &fe) {
		s.logger().InfoContext(ctx, "portal: OIDC sign-in refused", "user", id.user, "err", err)
		s.signinError(w, r, http.StatusForbidden, "This user name cannot be used here. Ask your administrator.")
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if acct.Disabled {
		s.audit(ctx, store.AuditRecord{Protocol: string(ProtocolPortal), Username: acct.Username, Remote: who.Remote,
			Client: who.Client, Mechanism: mechOIDC, Result: string(authn.Disabled)})
		s.signinError(w, r, http.StatusForbidden, msgDisabled)
		return
	}
	st := stageFull
	switch {
	case id.mfa:
	case acct.TOTP != nil:
		st = stageTOTP
	case acct.MFA:
		st = stageEnrol
	}
	if _, err := s.startSessionAs(ctx, w, r, acct, st, "", sessionVia{via: mechOIDC, idpMFA: id.mfa}); err != nil {
		s.unavailable(w, r, err)
		return
	}
	if st == stageFull {
		s.signedIn(ctx, acct.Username, r, mechOIDC)
	}
	s.redirect(w, r, stageHome(st))
}

// oidcAccount returns id's account, creating it at the first sign-in, with
// its admin role set as the token says (if the provider decides).
func (s *Server) oidcAccount(ctx context.Context, who account.Actor, id oidcIdentity) (store.Account, error) {
	acct, err := s.Store.GetAccount(ctx, id.user)
	if errors.Is(err, store.ErrNotFound) {
		err = s.accounts().CreateUser(ctx, who, account.NewUser{Username: id.user})
		if err != nil && !errors.Is(err, store.ErrExists) { // ErrExists: a parallel first sign-in
			return acct, err
		}
		acct, err = s.Store.GetAccount(ctx, id.user)
	}
	if err != nil {
		return acct, fmt.Errorf("OIDC sign-in of %s: %w", id.user, err)
	}
	if id.admin != nil && *id.admin != acct.Admin && !acct.Disabled {
		if err := s.accounts().SetAdmin(ctx, who, acct.Username, *id.admin); err != nil {
			return acct, err
		}
		acct.Admin = *id.admin
	}
	return acct, nil
}

// signinError shows the sign-in page with msg.
func (s *Server) signinError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "signin.html", page{Title: "Sign in", Error: msg, Data: signinData{}})
}

// containsAny reports whether list holds one of want.
func containsAny(list, want []string) bool {
	return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(list, w) })
}
