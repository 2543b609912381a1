package upstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// The login modes, written once for every protocol.
//
// A mode is an authenticator: it turns a Login into a credential, the SASL
// mechanisms that log in as the user in the order the mode prefers them.
// Each protocol client takes the first mechanism the upstream offers and
// speaks it its own way (IMAP: imapLogin; SMTP: saslClient).
//
// The OAuth 2.0 modes (xoauth2, oauthbearer; oauthmode.go) are an
// authenticator whose credential holds the user's access token (Config.Tokens)
// in a mechanism named XOAUTH2 or OAUTHBEARER; saslClient and imapLogin
// speak those with proxy/upstream/oauthsasl's client, and Config.login
// invalidates the token and tries once more when the server calls it
// invalid. A new protocol (POP3, ManageSieve) is a protocol value and its
// dialogue over a link (Config.login): modes, TLS, deadlines and
// validation serve it unchanged.

// authenticator is a login mode.
type authenticator interface {
	// credential returns how to log in as l.Username. An error refuses
	// the login before anything is dialled.
	credential(ctx context.Context, l Login) (credential, error)
	// needsClientSecret reports whether credential uses l.Password.
	needsClientSecret() bool
}

// Mechanism names (RFC 4616; draft-murchison-sasl-login, which IMAP speaks
// as its LOGIN command).
const (
	mechPlain = "PLAIN"
	mechLogin = "LOGIN"
)

// credential is what passgate presents to log in as one user.
type credential struct {
	// mechs, most preferred first. None: the upstream needs no login of
	// ours (XCLIENT).
	mechs []mechanism
	// learn asks IMAP to learn the upstream's capabilities before choosing
	// when the greeting carried none, instead of taking the first
	// mechanism: the client's own password goes only to a mechanism the
	// upstream offers.
	learn bool
	// token is the OAuth 2.0 access token the mechanisms carry, "" in
	// other modes: the one to invalidate if the server calls it invalid.
	token string
}

// mechanism is one SASL mechanism and what it sends.
type mechanism struct {
	name     string // mechPlain, mechLogin, oauthsasl.XOAuth2 or oauthsasl.OAuthBearer
	authzid  string // PLAIN's authorization identity; "" = none
	username string // PLAIN's authcid, LOGIN's user name, the OAuth user
	secret   string // the password, or the access token
	host     string // OAUTHBEARER's host and port (RFC 7628 §3.1)
	port     int
}

// choose returns the first mechanism offered says the upstream offers.
func (c credential) choose(offered func(name string) bool) (mechanism, bool) {
	for _, m := range c.mechs {
		if offered(m.name) {
			return m, true
		}
	}
	return mechanism{}, false
}

// names lists the mechanisms, for an error.
func (c credential) names() string {
	names := make([]string, len(c.mechs))
	for i, m := range c.mechs {
		names[i] = m.name
	}
	return strings.Join(names, " nor ")
}

// authenticator returns the login mode of c (a valid Config).
func (c *Config) authenticator() authenticator {
	switch c.mode() {
	case ModeMaster:
		return masterMode{user: c.MasterUser, secret: c.MasterSecret, sep: c.separator()}
	case ModeLoginMaster:
		return masterMode{user: c.MasterUser, secret: c.MasterSecret, sep: c.separator(), loginFirst: true}
	case ModePassthrough:
		return passthroughMode{}
	case ModeXOAuth2, ModeOAuthBearer:
		return c.oauthMode()
	}
	return xclientMode{}
}

// usable reports that c is invalid for protocol p: the upstream cannot be
// used.
func (c *Config) usable(p protocol) error {
	if err := c.validate(p); err != nil {
		return fmt.Errorf("upstream: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// masterMode logs in with the master user's credentials: ModeMaster prefers
// PLAIN with authzid = user, ModeLoginMaster (loginFirst) LOGIN as
// user<sep>master user.
type masterMode struct {
	user, secret, sep string
	loginFirst        bool
}

func (m masterMode) needsClientSecret() bool { return false }

// credential refuses a user name holding the separator: "eve%bob" + "%" +
// "proxy" would make the upstream (Dovecot splits at the first separator)
// read "bob%proxy" as the master user. authn refuses such names already;
// this is the last line.
func (m masterMode) credential(_ context.Context, l Login) (credential, error) {
	if strings.Contains(l.Username, m.sep) {
		return credential{}, &RefusedError{Text: "username contains the master user separator " + strconv.Quote(m.sep)}
	}
	joined := l.Username + m.sep + m.user
	plain := mechanism{name: mechPlain, authzid: l.Username, username: m.user, secret: m.secret}
	login := mechanism{name: mechLogin, username: joined, secret: m.secret}
	if m.loginFirst {
		plain = mechanism{name: mechPlain, username: joined, secret: m.secret}
		return credential{mechs: []mechanism{login, plain}}, nil
	}
	return credential{mechs: []mechanism{plain, login}}, nil
}

// passthroughMode logs in with the client's own credentials.
type passthroughMode struct{}

func (passthroughMode) needsClientSecret() bool { return true }

func (passthroughMode) credential(_ context.Context, l Login) (credential, error) {
	return credential{learn: true, mechs: []mechanism{
		{name: mechPlain, username: l.Username, secret: l.Password},
		{name: mechLogin, username: l.Username, secret: l.Password},
	}}, nil
}

// xclientMode is ModeXCLIENT: the upstream takes the user's name from passgate
// without a login.
type xclientMode struct{}

func (xclientMode) needsClientSecret() bool { return false }

func (xclientMode) credential(context.Context, Login) (credential, error) { return credential{}, nil }
