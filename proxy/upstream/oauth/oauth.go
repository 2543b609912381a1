// Package oauth is where the upstream login's OAuth 2.0 access tokens come
// from: a Source fetches a token for a user from the provider, and a Cache
// keeps it until shortly before it expires, fetching it once for all the
// logins that need it at the same moment.
//
// Three sources, all on golang.org/x/oauth2:
//   - ClientCredentials: Microsoft 365 app-only access (client secret, or a
//     certificate's private_key_jwt assertion, RFC 7523); one token serves
//     every mailbox the application was granted.
//   - ServiceAccount: Google Workspace domain-wide delegation (a JWT bearer
//     grant, RFC 7523 §2.1, with the user as subject).
//   - Delegated: the user's own refresh token, linked once in the portal;
//     rotated refresh tokens are saved through a RefreshStore.
//
// The upstream login calls:
//
//	tok, err := cache.Token(ctx, user) // log in with XOAUTH2 / OAUTHBEARER
//	// server said the token is invalid (oauthsasl.Retry):
//	cache.Invalidate(user, tok)
//	tok, err = cache.Token(ctx, user) // log in once more, then give up
//
// Errors say what the client should be told: ErrRelinkNeeded (the user must
// link the mailbox again in the portal: NO [ALERT] with the portal URL), a
// *ProviderError (the provider refused to issue a token: configuration or
// consent an admin must fix), ErrUnavailable (network, provider trouble).
//
// Implementation notes:
//   - Secrets (client secret, private keys, refresh and access tokens) are
//     never logged nor formatted into an error; a ProviderError keeps only
//     the provider's error code and description.
//   - A Source never retries; the Cache runs at most one fetch per cache key
//     at a time, and its fetch outlives no caller by more than FetchTimeout.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// Source fetches a new access token for a user from the provider. Each
// call is one request to the provider; the Cache decides when to call.
type Source interface {
	Fetch(ctx context.Context, user string) (*oauth2.Token, error)
}

// Shared is implemented by a Source whose one token serves every user
// (client credentials): the Cache keeps one token for all users.
type Shared interface {
	SharedToken() bool
}

// ErrRelinkNeeded is wrapped by errors that only the user can repair by
// linking the mailbox again in the portal: no refresh token was ever
// stored, or the provider refused it for good (invalid_grant: revoked,
// expired, password changed).
var ErrRelinkNeeded = errors.New("oauth: the mailbox must be linked again")

// ErrUnavailable is wrapped by errors of the network or of the provider's
// own (5xx, timeouts, a response that is not a token): try again later.
var ErrUnavailable = errors.New("oauth: token provider unavailable")

// ProviderError is the provider's refusal to issue a token (RFC 6749
// §5.2): wrong client id or secret, a certificate it does not know, a
// scope or a delegation it was not granted, a user it does not know.
type ProviderError struct {
	Status      int    // HTTP status
	Code        string // RFC 6749 §5.2 error, e.g. "invalid_client"
	Description string // the provider's error_description, shortened
}

func (e *ProviderError) Error() string {
	s := fmt.Sprintf("oauth: token provider refused (HTTP %d", e.Status)
	if e.Code != "" {
		s += ", " + e.Code
	}
	s += ")"
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// fetchError turns x/oauth2's error into one of the package's, without
// the response body (which x/oauth2's error text includes).
func fetchError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("fetch token: %w", err)
		}
		return fmt.Errorf("fetch token: %w: %w", ErrUnavailable, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if re.ErrorCode == "" {
		// x/oauth2/jwt does not parse the error body (RFC 6749 §5.2).
		var body struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			re.ErrorCode, re.ErrorDescription = body.Code, body.Description
		}
	}
	if re.ErrorCode == "" && (status >= http.StatusInternalServerError || status == http.StatusTooManyRequests || status < 400) {
		return fmt.Errorf("fetch token: %w (HTTP %d)", ErrUnavailable, status)
	}
	if re.ErrorCode == "temporarily_unavailable" || re.ErrorCode == "server_error" {
		return fmt.Errorf("fetch token: %w (%s)", ErrUnavailable, re.ErrorCode)
	}
	return &ProviderError{Status: status, Code: clean(re.ErrorCode, 64), Description: clean(re.ErrorDescription, 300)}
}

// clean keeps the first n printable characters of s.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return s
}

// withClient returns ctx carrying hc for x/oauth2's requests, if not nil.
func withClient(ctx context.Context, hc *http.Client) context.Context {
	if hc == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}
