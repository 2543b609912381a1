package upstream

import (
	"encoding/base64"
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

// maxAUTHLine is SMTP's limit on a command line, CRLF included (RFC 5321
// §4.5.3.1.4), which AUTH with its initial response must keep to (RFC 4954
// §4). Dovecot 2.3's submission-login refuses a longer AUTH line with "500
// 5.5.2 Line too long"; an OAuth access token (a JWT) never fits.
const maxAUTHLine = 512

// fitLine is a SASL client whose initial response is sent after the
// server's empty 334 challenge instead of on the AUTH line when the line
// would exceed maxAUTHLine (RFC 4954 §4, as RFC 4422 §5 describes).
type fitLine struct {
	sasl.Client
	held []byte // the initial response not yet sent
}

func (c *fitLine) Start() (mech string, ir []byte, err error) {
	mech, ir, err = c.Client.Start()
	if err == nil && len("AUTH "+mech+" \r\n")+base64.StdEncoding.EncodedLen(len(ir)) > maxAUTHLine {
		c.held, ir = ir, nil
	}
	return mech, ir, err
}

func (c *fitLine) Next(challenge []byte) ([]byte, error) {
	if held := c.held; held != nil && len(challenge) == 0 {
		c.held = nil
		return held, nil
	}
	c.held = nil
	return c.Client.Next(challenge)
}
