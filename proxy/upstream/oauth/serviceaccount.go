package oauth

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
)

// ServiceAccount fetches tokens with the JWT bearer grant (RFC 7523 §2.1)
// signed by a Google service account whose client is allowed domain-wide
// delegation: the assertion names the user as subject, and the token opens
// that user's mailbox.
type ServiceAccount struct {
	// Config is the service account (email, private key and its id, token
	// URL, scopes), as google.JWTConfigFromJSON reads a key file. Subject
	// is set per user.
	Config *jwt.Config
	// HTTPClient makes the requests; if nil, http.DefaultClient.
	HTTPClient *http.Client
}

var _ Source = (*ServiceAccount)(nil)

// NewServiceAccount reads a service account's JSON key file (as Google's
// console downloads it) for the given scopes.
func NewServiceAccount(keyJSON []byte, scopes ...string) (*ServiceAccount, error) {
	cfg, err := google.JWTConfigFromJSON(keyJSON, scopes...)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	return &ServiceAccount{Config: cfg}, nil
}

// Fetch requests a token for user.
func (s *ServiceAccount) Fetch(ctx context.Context, user string) (*oauth2.Token, error) {
	cfg := *s.Config
	cfg.Subject = user
	// x/oauth2/jwt posts without the context; the client's transport puts
	// it back so that cancellation and deadlines reach the request.
	hc := http.DefaultClient
	if s.HTTPClient != nil {
		hc = s.HTTPClient
	}
	cc := *hc
	cc.Transport = ctxTransport{ctx: ctx, base: hc.Transport}
	t, err := cfg.TokenSource(withClient(ctx, &cc)).Token()
	if err != nil {
		return nil, fetchError(err)
	}
	return t, nil
}

// ctxTransport sends each request with ctx, for callers that build
// requests without one.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r.WithContext(t.ctx))
}
