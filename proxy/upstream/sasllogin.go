package upstream

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// saslClient is the go-sasl client of m, for SMTP AUTH (RFC 4954).
func (m mechanism) saslClient() sasl.Client {
	switch {
	case m.name == mechLogin:
		return &loginClient{username: m.username, password: m.secret}
	case m.isOAuth():
		return m.oauthClient()
	}
	return sasl.NewPlainClient(m.authzid, m.username, m.secret)
}

// loginClient is the client side of LOGIN (draft-murchison-sasl-login),
// without an initial response: it answers the first challenge with the
// username and the second with the password, whatever their text. go-sasl's
// LOGIN client sends the username as an initial response, which some
// servers refuse.
type loginClient struct {
	username, password string
	step               int
}

func (c *loginClient) Start() (mech string, ir []byte, err error) {
	return sasl.Login, nil, nil
}

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.username), nil
	case 2:
		return []byte(c.password), nil
	}
	return nil, errors.New("sasl login: unexpected server challenge")
}
