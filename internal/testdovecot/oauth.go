package testdovecot

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Option changes how Start configures Dovecot.
type Option func(*options)

type options struct {
	oauth     *OAuth
	relayAddr string // WithSubmission
}

// OAuth makes Dovecot accept OAuth 2.0 bearer tokens with AUTHENTICATE
// XOAUTH2 and OAUTHBEARER, as Exchange Online and Gmail do: an oauth2
// passdb that validates the token locally as a JWT signed by the identity
// provider's key (introspection_mode = local, Dovecot 2.3.11+), checks its
// issuer and expiry, and requires its email claim to be the user logging
// in. PLAIN and LOGIN keep using the passwd-file.
type OAuth struct {
	Issuer       string // the tokens' iss
	KeyID        string // the kid of the IdP's signing key
	PublicKeyPEM []byte // the IdP's RS256 public key (PKIX PEM)
	// Clients are the azp values of the tokens to accept: Dovecot files the
	// key under the token's azp, or under "default" when it has none.
	Clients []string
}

// WithOAuth adds the oauth2 passdb and the XOAUTH2 and OAUTHBEARER
// mechanisms.
func WithOAuth(o OAuth) Option {
	return func(opts *options) { opts.oauth = &o }
}

// oauthConf is dovecot.conf's part for OAuth; the template's Dir fills it.
// The oauth2 passdb serves only the OAuth mechanisms (and the passwd-file
// only PLAIN and LOGIN, so that a token is never tried as a password).
// Refused tokens are part of these tests: the authentication penalty
// (anvil's growing delay per address, up to 15 s) is turned off.
const oauthConf = `
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{.Dir}}/dovecot-oauth2.conf.ext
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`

// writeOAuth writes dovecot-oauth2.conf.ext and the key dictionary: the
// public key at keys/<azp>/RS256/<kid> for each client and "default".
func (s *Server) writeOAuth(o *OAuth) error {
	if o.Issuer == "" || o.KeyID == "" || len(o.PublicKeyPEM) == 0 {
		return errors.New("oauth: Issuer, KeyID and PublicKeyPEM are required")
	}
	keys := filepath.Join(s.Dir, "oauth2-keys")
	for _, azp := range append([]string{"default"}, o.Clients...) {
		// Dovecot escapes "/" and "%" in azp and kid (and "." in kid);
		// keep to names that need no escaping.
		for _, name := range []string{azp, o.KeyID} {
			if name == "" || name != url.PathEscape(name) || strings.ContainsAny(name, ".%") {
				return fmt.Errorf("oauth: %q needs escaping in Dovecot's key dictionary; use letters, digits, - and _", name)
			}
		}
		dir := filepath.Join(keys, azp, "RS256")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("oauth keys: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, o.KeyID), o.PublicKeyPEM, 0o644); err != nil {
			return fmt.Errorf("oauth keys: %w", err)
		}
	}
	ext := strings.Join([]string{
		"introspection_mode = local",
		"local_validation_key_dict = fs:posix:prefix=" + keys + "/",
		"issuers = " + o.Issuer,
		"username_attribute = email",
		"debug = yes",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "dovecot-oauth2.conf.ext"), []byte(ext), 0o644); err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	return nil
}
