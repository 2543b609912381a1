package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials fetches app-only tokens with the client credentials
// grant (RFC 6749 §4.4), as Microsoft 365 grants IMAP.AccessAsApp and
// SMTP.SendAsApp: one token serves every mailbox the application may open,
// so the Cache keeps one token for all users.
type ClientCredentials struct {
	TokenURL string
	ClientID string
	// ClientSecret authenticates the client (client_secret_post). Ignored
	// when Certificate is set.
	ClientSecret string
	// Certificate, if set, authenticates the client with a signed
	// assertion instead of a secret (RFC 7523 §2.2, OpenID Connect
	// private_key_jwt), as Microsoft's certificate credentials.
	Certificate *Certificate
	Scopes      []string
	// HTTPClient makes the requests; if nil, http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock of the assertion's times; if nil, time.Now.
	Now func() time.Time
}

var (
	_ Source = (*ClientCredentials)(nil)
	_ Shared = (*ClientCredentials)(nil)
)

// SharedToken reports that one token serves every user.
func (c *ClientCredentials) SharedToken() bool { return true }

// Fetch requests a new token; user is not sent (the token is the
// application's).
func (c *ClientCredentials) Fetch(ctx context.Context, user string) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		TokenURL:     c.TokenURL,
		Scopes:       c.Scopes,
		// In the body, as Microsoft documents it; no auto-detection, which
		// would send a refused request twice.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	if c.Certificate != nil {
		now := time.Now()
		if c.Now != nil {
			now = c.Now()
		}
		assertion, err := c.Certificate.assertion(c.ClientID, c.TokenURL, now)
		if err != nil {
			return nil, fmt.Errorf("fetch token: client assertion: %w", err)
		}
		cfg.ClientSecret = ""
		cfg.EndpointParams = url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		}
	}
	t, err := cfg.Token(withClient(ctx, c.HTTPClient))
	if err != nil {
		return nil, fetchError(err)
	}
	return t, nil
}

// Certificate is the application's certificate and its RSA private key.
type Certificate struct {
	Leaf *x509.Certificate
	Key  *rsa.PrivateKey
}

// LoadCertificate reads a PEM certificate and its PEM private key (PKCS #1
// or #8, RSA: Microsoft asks for PS256).
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("load certificate: the private key is not RSA")
	}
	return &Certificate{Leaf: pair.Leaf, Key: key}, nil
}

// assertionLifetime is how long a client assertion is valid: Microsoft
// asks for 5 to 10 minutes after nbf.
const assertionLifetime = 5 * time.Minute

// assertion returns a signed client assertion in the form Microsoft's
// "certificate credentials" document gives: header alg PS256, typ JWT,
// x5t#S256 the certificate's SHA-256 thumbprint; claims aud the token
// endpoint, iss and sub the client id, a fresh jti, nbf, iat, exp.
func (c *Certificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	// MapClaims, because RegisteredClaims writes a lone aud as an array
	// and Microsoft's example has a string.
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{
		"iss": clientID,
		"sub": clientID,
		"aud": tokenURL,
		"jti": rand.Text(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	})
	thumb := sha256.Sum256(c.Leaf.Raw)
	tok.Header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(thumb[:])
	return tok.SignedString(c.Key)
}
