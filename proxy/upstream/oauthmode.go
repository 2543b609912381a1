package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/proxy/upstream/oauthsasl"
)

// The OAuth 2.0 login modes (ModeXOAuth2, ModeOAuthBearer): the credential
// is the user's access token from Config.Tokens, and the server's answer
// is judged by the error challenge it sent (oauthsasl.Classify):
//   - an invalid or expired token: Config.login invalidates it and logs in
//     once more with a fresh one (staleTokenError); a second refusal is a
//     *RefusedError;
//   - a permission or consent missing: a *RefusedError whose Action says
//     what an admin must grant;
//   - the server's or the network's trouble: ErrUnavailable.
// The token's own errors: oauth.ErrRelinkNeeded is a *RelinkError, a
// provider's refusal a *RefusedError with an Action, the rest
// ErrUnavailable.

// Tokens gives the access token of a user and forgets one the upstream
// refused; *oauth.Cache implements it.
type Tokens interface {
	Token(ctx context.Context, user string) (string, error)
	Invalidate(user, rejected string)
}

var _ Tokens = (*oauth.Cache)(nil)

// RelinkError says that only the user can repair the login: the provider
// refused the mailbox's stored refresh token for good (revoked, expired),
// or none was ever stored, so the user must link the mailbox again in the
// portal. Front ends answer NO [ALERT] / 535 with the portal's URL.
type RelinkError struct {
	Err error // wraps oauth.ErrRelinkNeeded
}

func (e *RelinkError) Error() string { return "upstream login: " + e.Err.Error() }

func (e *RelinkError) Unwrap() error { return e.Err }

// oauthMode logs in with mech (XOAUTH2 or OAUTHBEARER) and the user's
// access token.
type oauthMode struct {
	mech   string
	tokens Tokens
	host   string // OAUTHBEARER's host and port: the upstream's address
	port   int
}

func (c *Config) oauthMode() oauthMode {
	m := oauthMode{mech: oauthsasl.XOAuth2, tokens: c.Tokens}
	if c.mode() == ModeOAuthBearer {
		m.mech = oauthsasl.OAuthBearer
		host, port, _ := net.SplitHostPort(c.Address) // validated
		m.host = host
		m.port, _ = strconv.Atoi(port)
	}
	return m
}

func (oauthMode) needsClientSecret() bool { return false }

func (m oauthMode) credential(ctx context.Context, l Login) (credential, error) {
	tok, err := m.tokens.Token(ctx, l.Username)
	if err != nil {
		return credential{}, tokenError(err)
	}
	return credential{token: tok, mechs: []mechanism{
		{name: m.mech, username: l.Username, secret: tok, host: m.host, port: m.port},
	}}, nil
}

// tokenError maps the token source's error onto the package's.
func tokenError(err error) error {
	var pe *oauth.ProviderError
	switch {
	case errors.Is(err, oauth.ErrRelinkNeeded):
		return &RelinkError{Err: err}
	case errors.As(err, &pe):
		return &RefusedError{Code: "AUTHORIZATIONFAILED", Text: pe.Error(),
			Action: "the identity provider refused passgate a token (" + pe.Error() +
				"): check the [oauth] client, its credentials and the permissions it was granted"}
	}
	return fmt.Errorf("upstream token: %w: %w", ErrUnavailable, err)
}

// oauthClient is the SASL client of an OAuth mechanism, new for each
// exchange.
func (m mechanism) oauthClient() *oauthsasl.Client {
	if m.name == oauthsasl.XOAuth2 {
		return oauthsasl.NewXOAuth2(m.username, m.secret)
	}
	return oauthsasl.NewOAuthBearer(m.username, m.secret, m.host, m.port)
}

func (m mechanism) isOAuth() bool {
	return m.name == oauthsasl.XOAuth2 || m.name == oauthsasl.OAuthBearer
}

// staleTokenError is a refusal of the token as invalid (RFC 6750
// invalid_token, HTTP 401), or without an error challenge at all (as
// Exchange Online refuses): a fresh token may be taken. It never holds
// the token.
type staleTokenError struct {
	failure *oauthsasl.Failure // nil: no challenge
	code    string             // the server's response code, if any
	text    string             // the server's text, withheld if it echoed a secret
}

func (e *staleTokenError) Error() string {
	return "upstream login: the mail server refused the access token (" + e.reason() + ")"
}

func (e *staleTokenError) reason() string {
	if e.failure == nil {
		return "no error challenge: " + e.text
	}
	return e.failure.String()
}

// refused is the final answer when a fresh token was refused too.
func (e *staleTokenError) refused() *RefusedError {
	return &RefusedError{Code: "AUTHORIZATIONFAILED", Text: e.text,
		Action: "the mail server refused a freshly issued access token (" + e.reason() +
			"): check that the passgate user name is the mailbox address and that [oauth] asks for the mail server's scopes"}
}

// oauthRefusal judges a refused OAuth exchange by the server's error
// challenge (sc.Failure); code and text are the server's final answer.
func oauthRefusal(sc *oauthsasl.Client, code, text string) error {
	f := sc.Failure()
	if f == nil {
		return &staleTokenError{code: code, text: text}
	}
	switch oauthsasl.Classify(f) {
	case oauthsasl.Retry:
		return &staleTokenError{failure: f, code: code, text: text}
	case oauthsasl.Refused:
		return &RefusedError{Code: "AUTHORIZATIONFAILED", Text: text, Action: oauthsasl.Explain(f)}
	}
	return fmt.Errorf("upstream login: %w: the mail server failed (%s): %s", ErrUnavailable, f, text)
}
