package portal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/passgate/passgate/store"
)

// The mailbox link (delegated upstream login): a signed-in user opens
// /mailbox, follows "Link your mailbox" to the provider (authorization
// code with PKCE, login_hint the username), consents there, and comes back
// with a code that the portal redeems for a refresh token. The token is
// stored sealed in the account (MailboxLinks) through the account service
// (audited); from then on the upstream login gets access tokens with it.
// When the provider refuses it for good, the page says "link again".

// LinkConfig is the delegated mode's client at the provider.
type LinkConfig struct {
	// OAuth2 is the client: endpoint, id, secret and the mail scopes
	// (oauth.Settings.DelegatedConfig). Its RedirectURL is not used: the
	// portal sends BaseURL's origin + /mailbox/link/callback. Required.
	OAuth2 *oauth2.Config
	// Options are extra parameters of the authorization request
	// (oauth.Settings.LinkOptions: Google's offline access).
	Options []oauth2.AuthCodeOption
	// CheckIdentity also asks for an ID token (scopes openid, email,
	// profile) and refuses a link unless its email, preferred_username or
	// upn is the user's username or one of their aliases: a user cannot
	// link someone else's mailbox, or a personal one, by signing in at
	// the provider as someone else. Set it for Microsoft and Google.
	CheckIdentity bool
	// Provider names the provider on the page, e.g. "Microsoft 365"; ""
	// = "your mail provider".
	Provider string
	// HTTPClient makes the token requests; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// identityScopes are what CheckIdentity adds to the link's scopes.
var identityScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// config is the link's client with its redirect URI and scopes.
func (c *LinkConfig) config(redirect string) *oauth2.Config {
	cfg := *c.OAuth2
	cfg.RedirectURL = redirect
	if c.CheckIdentity {
		cfg.Scopes = slices.Clone(cfg.Scopes)
		for _, sc := range identityScopes {
			if !slices.Contains(cfg.Scopes, sc) {
				cfg.Scopes = append(cfg.Scopes, sc)
			}
		}
	}
	return &cfg
}

func (c *LinkConfig) provider() string {
	if c.Provider != "" {
		return c.Provider
	}
	return "your mail provider"
}

type mailboxData struct {
	Provider string
	Link     *store.OAuthLink // nil: never linked
}

func (s *Server) mailboxPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.renderMailbox(w, r, rc, http.StatusOK, "")
}

func (s *Server) renderMailbox(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errMsg string) {
	p := s.pageFor(r, rc, "Mailbox", "mailbox")
	p.Error = errMsg
	p.Data = mailboxData{Provider: s.Link.provider(), Link: rc.acct.OAuth}
	s.render(w, r, status, "mailbox.html", p)
}

// linkStart sends the user to the provider to grant passgate access to
// their mailbox.
func (s *Server) linkStart(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f, err := s.startFlow(w, r, flowLink, rc.acct.Username)
	if errors.Is(err, errTooManyFlows) {
		s.renderMailbox(w, r, rc, http.StatusTooManyRequests, msgTooManyFlows)
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	cfg := s.Link.config(s.redirectURI(callbackLink))
	opts := append(authParams(f, s.Link.Options...), oauth2.SetAuthURLParam("login_hint", rc.acct.Username))
	s.toProvider(w, cfg.AuthCodeURL(f.State, opts...))
}

// linkCallback redeems the code for a refresh token and stores it sealed.
func (s *Server) linkCallback(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := s.takeFlow(w, r, flowLink, q.Get("state"))
	if err == nil && f.User != rc.acct.Username { // signed in as someone else meanwhile
		err = errNoFlow
	}
	if errors.Is(err, errNoFlow) {
		s.renderMailbox(w, r, rc, http.StatusBadRequest,
			"This link attempt is no longer valid: it took too long, was already used, or was started in another browser or tab. Try again.")
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if code := callbackError(q); code != "" {
		s.logger().InfoContext(ctx, "portal: mailbox link not completed at the provider", "user", rc.acct.Username,
			"error", code, "description", clean(q.Get("error_description"), 200))
		s.renderMailbox(w, r, rc, http.StatusUnauthorized,
			"The link did not complete at "+s.Link.provider()+" ("+code+"). Try again, and allow passgate access to your mail.")
		return
	}
	rt, msg, err := s.redeemLink(ctx, rc, q.Get("code"), f)
	if err != nil {
		s.logger().WarnContext(ctx, "portal: mailbox link refused", "user", rc.acct.Username, "err", err)
		status := http.StatusUnauthorized
		if errors.Is(err, errProviderDown) {
			status, msg = http.StatusServiceUnavailable, msgProviderDown
		}
		s.renderMailbox(w, r, rc, status, msg)
		return
	}
	sealed, err := s.seal(sealPurpose, rc.acct.Username, []byte(rt))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if err := s.accounts().LinkMailbox(ctx, s.actor(r, rc), rc.acct.Username, sealed); err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.setFlash(ctx, rc, "Your mailbox is linked: your app passwords now reach it through passgate.")
	s.redirect(w, r, "/mailbox")
}

// redeemLink redeems code and returns the refresh token, or a message for
// the user and the reason. With CheckIdentity the ID token must name the
// user.
func (s *Server) redeemLink(ctx context.Context, rc *reqCtx, code string, f flow) (rt, msg string, err error) {
	cfg := s.Link.config(s.redirectURI(callbackLink))
	tok, err := exchange(ctx, cfg, s.Link.HTTPClient, code, f.Verifier)
	if err != nil {
		return "", "The link failed at " + s.Link.provider() + ". Try again; if it keeps failing, tell your administrator.", err
	}
	if missing := missingScopes(tok, s.Link.OAuth2.Scopes); len(missing) > 0 {
		return "", "You did not allow passgate to use your mail at " + s.Link.provider() +
				". Link again and allow every access asked for.",
			fmt.Errorf("granted scopes lack %q", missing)
	}
	if tok.RefreshToken == "" {
		return "", s.Link.provider() + " gave passgate no lasting access (no refresh token). Tell your administrator.",
			errors.New("the token response has no refresh token")
	}
	if s.Link.CheckIdentity {
		who, err := s.linkIdentity(ctx, tok, f)
		if err != nil {
			return "", "The link failed at " + s.Link.provider() + ". Try again.", err
		}
		if !slices.Contains(append([]string{rc.acct.Username}, rc.acct.Aliases...), who) {
			return "", "You signed in at " + s.Link.provider() + " as " + who + ", but this is " + rc.acct.Username +
					"'s account. Link again and sign in there as " + rc.acct.Username + ".",
				fmt.Errorf("the provider's account is %q", who)
		}
	}
	return tok.RefreshToken, "", nil
}

// linkIdentity returns who the link's ID token names (email,
// preferred_username or upn, normalised). The token came straight from the
// token endpoint over the TLS connection the code was redeemed on, which
// OpenID Connect Core §3.1.3.7 (6) accepts in place of its signature;
// audience, expiry and nonce are checked.
func (s *Server) linkIdentity(ctx context.Context, tok *oauth2.Token, f flow) (string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the token response has no ID token")
	}
	v := oidc.NewVerifier("", nil, &oidc.Config{ClientID: s.Link.OAuth2.ClientID, SkipIssuerCheck: true,
		InsecureSkipSignatureCheck: true, Now: s.now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return "", errors.New("ID token: the nonce is not this link's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	for _, c := range []string{"email", "preferred_username", "upn"} {
		if v, _ := claims[c].(string); v != "" {
			if who, err := store.NormalizeUsername(v); err == nil {
				return who, nil
			}
		}
	}
	return "", errors.New("ID token: no email, preferred_username or upn")
}

// missingScopes returns the requested mail scopes the token response says
// were not granted (a provider with granular consent lets users untick
// them). OpenID and offline_access scopes are not echoed by every
// provider, and a response without "scope" grants what was asked (RFC
// 6749 §5.1).
func missingScopes(tok *oauth2.Token, asked []string) []string {
	granted, _ := tok.Extra("scope").(string)
	if granted == "" {
		return nil
	}
	have := strings.Fields(granted)
	var missing []string
	for _, sc := range asked {
		if sc == "offline_access" || slices.Contains(identityScopes, sc) ||
			slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, sc) }) {
			continue
		}
		missing = append(missing, sc)
	}
	return missing
}
