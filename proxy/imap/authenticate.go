package imap

import (
	"strings"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

var (
	errAuthCanceled = bad("Authentication canceled")
	errBadBase64    = bad("Invalid base64")
	errBadPLAIN     = bad("Malformed PLAIN response")
	// A PLAIN authorization identity other than the user: passgate never
	// lets one user act as another (RFC 5530 AUTHORIZATIONFAILED).
	errImpersonation = &respError{status: "NO", code: "AUTHORIZATIONFAILED",
		text: "Logging in as another user is not allowed", failure: true}
)

// cmdAuthenticate answers AUTHENTICATE (RFC 3501 §6.2.2) for PLAIN (RFC
// 4616) and LOGIN, with an optional initial response (RFC 4959 SASL-IR):
//
//	authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]
func (c *conn) cmdAuthenticate(cmd *command) error {
	if !c.cleartextOK() {
		return errPrivacyRequired
	}
	if err := cmd.sp(); err != nil {
		return err
	}
	mech, err := cmd.atom()
	if err != nil {
		return err
	}
	var ir []byte
	hasIR := len(cmd.line) > 0
	if hasIR {
		if err := cmd.sp(); err != nil {
			return err
		}
		tok, err := cmd.atom()
		if err != nil {
			return errBadBase64
		}
		if ir, err = decodeResponse(tok); err != nil {
			return err
		}
	}
	if err := cmd.end(); err != nil {
		return err
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return c.authPlain(cmd.tag, ir, hasIR)
	case "LOGIN":
		return c.authLogin(cmd.tag, ir, hasIR)
	}
	return &respError{status: "NO", text: "Unsupported authentication mechanism"}
}

// authPlain runs PLAIN: one response "authzid NUL authcid NUL passwd"
// (RFC 4616 §2).
func (c *conn) authPlain(tag string, resp []byte, hasIR bool) error {
	if !hasIR {
		var err error
		if resp, err = c.saslStep(""); err != nil {
			return err
		}
	}
	authzid, authcid, secret, err := decodePlain(resp)
	if err != nil {
		return err
	}
	if authzid != "" && !store.SameUsername(authzid, authcid) {
		c.log.Info("imap login", "user", proxy.LoggedUsername(authcid), "mechanism", "PLAIN", "result", "authzid-refused")
		return errImpersonation
	}
	return c.login(tag, "PLAIN", authcid, secret)
}

// decodePlain splits a PLAIN response (proxy.DecodePlain).
func decodePlain(resp []byte) (authzid, authcid, passwd string, err error) {
	authzid, authcid, passwd, err = proxy.DecodePlain(resp)
	if err != nil {
		return "", "", "", errBadPLAIN
	}
	return authzid, authcid, passwd, nil
}

// authLogin runs the LOGIN mechanism: "Username:" and "Password:" prompts;
// an initial response is the username.
func (c *conn) authLogin(tag string, user []byte, hasIR bool) error {
	var err error
	if !hasIR {
		if user, err = c.saslStep(proxy.LoginPromptUser); err != nil {
			return err
		}
	}
	secret, err := c.saslStep(proxy.LoginPromptPass)
	if err != nil {
		return err
	}
	return c.login(tag, "LOGIN", string(user), string(secret))
}

// saslStep sends a continuation request with a base64 challenge and reads
// the client's base64 response; "*" cancels (RFC 3501 §6.2.2: tagged BAD).
func (c *conn) saslStep(challenge string) ([]byte, error) {
	resp, err := c.SASLStep("+ "+challenge, c.readResponse)
	return resp, saslError(err)
}

// readResponse reads a SASL response line.
func (c *conn) readResponse() (string, error) {
	line, err := c.readLine()
	return string(line), err
}

// saslError is the reply to a SASL step's or decoding's error.
func saslError(err error) error { return proxy.SASLReply(err, errAuthCanceled, errBadBase64) }

// decodeResponse decodes a base64 SASL response; "=" is an empty one
// (RFC 4959 §3).
func decodeResponse(s string) ([]byte, error) {
	b, err := proxy.DecodeSASL(s)
	return b, saslError(err)
}
