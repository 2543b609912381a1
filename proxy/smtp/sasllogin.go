package smtp

import "github.com/emersion/go-sasl"

// The LOGIN mechanism (draft-murchison-sasl-login): the server prompts
// "Username:" then "Password:", the client answers each. go-sasl has the
// client side only (passgate's own, for upstreams, is in proxy/upstream).

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
