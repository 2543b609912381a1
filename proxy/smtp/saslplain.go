package smtp

import (
	"bytes"

	"github.com/emersion/go-sasl"
)

// plainServer is the server side of PLAIN (RFC 4616). go-sasl has one, but
// its error for a malformed message reaches the client as "454 4.7.0 sasl:
// invalid response"; this one answers 501 5.5.2 and passes empty fields on
// to authenticate, which refuses them like any wrong credential.
type plainServer struct {
	authenticate func(authzid, username, password string) error
	done         bool
}

func newPlainServer(authenticate func(authzid, username, password string) error) sasl.Server {
	return &plainServer{authenticate: authenticate}
}

// Next takes the one response; without an initial response it first sends
// an empty challenge (RFC 4616 §2, RFC 4954 §4).
func (s *plainServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.done {
		return nil, false, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		return []byte{}, false, nil
	}
	s.done = true
	authzid, authcid, passwd, err := decodePlain(response)
	if err != nil {
		return nil, true, err
	}
	return nil, true, s.authenticate(authzid, authcid, passwd)
}

// decodePlain splits a PLAIN message: [authzid] NUL authcid NUL passwd.
func decodePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", errMalformedPLAIN
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}
