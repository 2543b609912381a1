package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// Errors of the SASL helpers; a front-end turns each into its protocol's
// reply.
var (
	ErrBadBase64 = errors.New("invalid base64")
	ErrBadPLAIN  = errors.New("malformed PLAIN response")
)

// DecodeSASL decodes a base64 SASL response; "=" is an empty one (RFC 4959
// §3, RFC 5034 §4).
func DecodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadBase64
	}
	return b, nil
}

// DecodePlain splits a PLAIN response: [authzid] NUL authcid NUL passwd
// (RFC 4616 §2). Empty fields are passed on: the Authenticator refuses
// them like any wrong credential.
func DecodePlain(resp []byte) (authzid, authcid, passwd string, err error) {
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return "", "", "", ErrBadPLAIN
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// The LOGIN mechanism's prompts, base64 ("Username:", "Password:").
const (
	LoginPromptUser = "VXNlcm5hbWU6"
	LoginPromptPass = "UGFzc3dvcmQ6"
)
