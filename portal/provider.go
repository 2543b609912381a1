package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"golang.org/x/oauth2"
)

// What the flows share: sending the browser to the provider, reading what
// it sends back, and redeeming the code.

// callbackPath* are the redirect URIs' paths, under BaseURL's origin.
const (
	callbackSignIn = "/signin/oidc/callback"
	callbackLink   = "/mailbox/link/callback"
)

// redirectURI is the absolute redirect URI of path at BaseURL's origin.
func (s *Server) redirectURI(path string) string {
	u := s.baseURL()
	return u.Scheme + "://" + u.Host + path
}

// toProvider sends the browser to the provider's authorization endpoint
// (RFC 6749 §4.1.1): the only redirect off the portal. target is built by
// oauth2.Config.AuthCodeURL from the configured endpoint, never from the
// request.
func (s *Server) toProvider(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// authParams are the parameters of every authorization request: the
// state, PKCE S256 (RFC 7636 §4.3) and, for OpenID Connect, the nonce.
func authParams(f flow, extra ...oauth2.AuthCodeOption) []oauth2.AuthCodeOption {
	return append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("nonce", f.Nonce)}, extra...)
}

// providerErrors are the RFC 6749 §4.1.2.1 error codes (and OpenID
// Connect's) shown to the user as they are; any other is shown as
// "error". The provider's error_description is never shown: anyone can
// put text in a callback URL.
var providerErrors = []string{"access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
	"invalid_scope", "server_error", "temporarily_unavailable", "interaction_required", "login_required",
	"consent_required", "account_selection_required"}

// callbackError returns the error code of a callback that carries one
// (the user cancelled, the provider refused), else "".
func callbackError(q url.Values) string {
	code := q.Get("error")
	if code == "" {
		return ""
	}
	if !slices.Contains(providerErrors, code) {
		return "error"
	}
	return code
}

// errProviderDown wraps failures to reach the provider.
var errProviderDown = errors.New("the identity provider could not be reached")

// refusal is a provider's refusal to redeem a code (RFC 6749 §5.2).
type refusal struct{ code string }

func (e *refusal) Error() string { return "the identity provider refused the code: " + e.code }

// exchange redeems code with the PKCE verifier (RFC 6749 §4.1.3, RFC 7636
// §4.5) at the token endpoint, through hc if not nil. Errors are a
// *refusal or wrap errProviderDown; neither holds the response body.
func exchange(ctx context.Context, cfg *oauth2.Config, hc *http.Client, code, verifier string) (*oauth2.Token, error) {
	if hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		return tok, nil
	case errors.As(err, &re) && re.ErrorCode != "" && re.ErrorCode != "server_error" && re.ErrorCode != "temporarily_unavailable":
		return nil, &refusal{code: clean(re.ErrorCode, 64)}
	case errors.As(err, &re) && re.Response != nil:
		return nil, fmt.Errorf("redeem code: %w (HTTP %d)", errProviderDown, re.Response.StatusCode)
	case errors.As(err, &re):
		return nil, fmt.Errorf("redeem code: %w", errProviderDown)
	}
	return nil, fmt.Errorf("redeem code: %w: %w", errProviderDown, err) // network: no body to hide
}

// clean keeps the first n characters of s that are printable ASCII.
func clean(s string, n int) string {
	out := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(out) < n; i++ {
		if s[i] >= 0x20 && s[i] < 0x7f {
			out = append(out, s[i])
		}
	}
	return string(out)
}
