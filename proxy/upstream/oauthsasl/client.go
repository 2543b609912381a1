// Package oauthsasl is the client side of the two SASL mechanisms that carry
// an OAuth 2.0 bearer token to a mail server: XOAUTH2 (Google's and
// Microsoft's, documented by both) and OAUTHBEARER (RFC 7628). It also reads
// the error challenge a server sends when it refuses a token and says what
// the upstream login should do about it (Classify).
//
//	c := oauthsasl.NewXOAuth2(user, token)
//	// run c as any go-sasl client (imapclient.Authenticate, or passgate's
//	// upstream login on the raw connection); after a refusal:
//	if f := c.Failure(); f != nil && oauthsasl.Classify(f) == oauthsasl.Retry {
//		// invalidate the cached token, fetch a new one, log in once more
//	}
//
// Implementation notes:
//   - The token is a secret: it is never formatted into an error, and a
//     Failure holds only what the server sent.
//   - A user name or token that could break the message framing (a ^A, or a
//     NUL) is refused by Start before anything is sent.
//   - An error challenge is answered as each mechanism requires: XOAUTH2 with
//     an empty response (Google's and Microsoft's documents), OAUTHBEARER with
//     a single %x01 (RFC 7628 §3.2.3); the server then ends the exchange with
//     its failure reply. A second challenge aborts the exchange.
package oauthsasl

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// Mechanism names as servers announce them (AUTH=XOAUTH2, AUTH=OAUTHBEARER).
const (
	XOAuth2     = "XOAUTH2"
	OAuthBearer = sasl.OAuthBearer
)

// ErrFraming is returned by Start when the user name or the token contains
// a byte that would end a field of the SASL message early (^A or NUL).
var ErrFraming = errors.New("oauthsasl: user name or token contains a control byte")

// errSecondChallenge ends an exchange whose server challenged again after
// the error challenge was answered.
var errSecondChallenge = errors.New("oauthsasl: unexpected second challenge")

// Client is one authentication exchange with XOAUTH2 or OAUTHBEARER. It
// implements go-sasl's sasl.Client. Use a new Client for every attempt.
type Client struct {
	mech    string
	user    string
	token   string
	host    string // OAUTHBEARER only
	port    int    // OAUTHBEARER only
	failure *Failure
}

var _ sasl.Client = (*Client)(nil)

// NewXOAuth2 returns an XOAUTH2 client that logs in as user with an access
// token.
func NewXOAuth2(user, token string) *Client {
	return &Client{mech: XOAuth2, user: user, token: token}
}

// NewOAuthBearer returns an OAUTHBEARER client (RFC 7628) that logs in as
// user with an access token. host and port name the server being connected
// to (RFC 7628 §3.1 says a client should send them); empty and 0 leave
// them out.
func NewOAuthBearer(user, token, host string, port int) *Client {
	return &Client{mech: OAuthBearer, user: user, token: token, host: host, port: port}
}

// Start returns the mechanism name and the initial response.
func (c *Client) Start() (mech string, ir []byte, err error) {
	if strings.ContainsAny(c.user+c.token+c.host, "\x00\x01") {
		return c.mech, nil, ErrFraming
	}
	if c.mech == XOAuth2 {
		// base64("user=" {User} "^Aauth=Bearer " {Access Token} "^A^A"); the
		// caller's protocol layer does the base64.
		return XOAuth2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
	}
	// RFC 7628 §3.1: gs2-header "n,a=" saslname "," where saslname escapes
	// "=" and "," (RFC 5801 §4); go-sasl writes the user verbatim.
	return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: saslname.Replace(c.user),
		Token:    c.token,
		Host:     c.host,
		Port:     c.port,
	}).Start()
}

var saslname = strings.NewReplacer("=", "=3D", ",", "=2C")

// Next answers a server challenge. Both mechanisms are done after the
// initial response, so a challenge is the server's error report: it is
// kept for Failure and answered so that the server can send its final
// failure reply. (The empty challenge of a server without SASL-IR, RFC
// 4959, asks for the initial response: the protocol layer answers it, as
// go-imap's and go-smtp's clients do, not Next.)
func (c *Client) Next(challenge []byte) ([]byte, error) {
	if c.failure != nil {
		return nil, errSecondChallenge
	}
	c.failure = ParseFailure(challenge)
	if c.mech == XOAuth2 {
		return []byte{}, nil
	}
	return []byte{0x01}, nil
}

// Failure returns the error the server reported in its challenge, or nil if
// it sent none (it accepted the token, or refused it with no challenge as
// Exchange Online does).
func (c *Client) Failure() *Failure { return c.failure }

// String names the mechanism and the user, never the token.
func (c *Client) String() string {
	s := c.mech + " as " + strconv.Quote(c.user)
	if c.failure != nil {
		s += " (" + c.failure.String() + ")"
	}
	return s
}
