package smtp

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// The LOGIN mechanism (draft-murchison-sasl-login): the server prompts
// "Username:" then "Password:", the client answers each. go-sasl has the
// client side only, and its client sends the username as an initial
// response, which some servers refuse; both sides are here.

var (
	loginUserPrompt = []byte("Username:")
	loginPassPrompt = []byte("Password:")
)

// loginServer is the server side of LOGIN. An initial response, if any, is
// the username (as Outlook and go-sasl's client send it).
type loginServer struct {
	authenticate func(username, password string) error
	username     string
	step         int
}

func newLoginServer(authenticate func(username, password string) error) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		if response == nil {
			return loginUserPrompt, false, nil
		}
		fallthrough
	case 1:
		s.step = 2
		s.username = string(response)
		return loginPassPrompt, false, nil
	case 2:
		s.step++
		return nil, true, s.authenticate(s.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// loginClient is the client side of LOGIN, without an initial response: it
// answers the first challenge with the username and the second with the
// password, whatever their text.
type loginClient struct {
	username, password string
	step               int
}

func newLoginClient(username, password string) sasl.Client {
	return &loginClient{username: username, password: password}
}

func (c *loginClient) Start() (mech string, ir []byte, err error) {
	return "LOGIN", nil, nil
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
