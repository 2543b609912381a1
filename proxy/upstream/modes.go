package upstream

import (
	"fmt"
	"slices"
)

// TLSMode says how the connection to the upstream is protected.
type TLSMode string

// TLS modes; the zero value means TLSNone.
const (
	TLSNone     TLSMode = "none"     // plain TCP
	TLSStartTLS TLSMode = "starttls" // plain connect, then STARTTLS (RFC 3501 §6.2.1, RFC 3207)
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (RFC 8314 §3.3)
)

var tlsModes = []TLSMode{TLSNone, TLSStartTLS, TLSImplicit}

// UnmarshalText accepts none, starttls or tls.
func (m *TLSMode) UnmarshalText(text []byte) error { return parse(m, text, tlsModes) }

// Mode says how passgate logs in to the upstream as the user. Each mode is
// written once, as an authenticator (credential.go), for every protocol.
type Mode string

// Login modes; the zero value means ModeMaster.
const (
	// ModeMaster: SASL PLAIN with authzid = user, authcid = master user
	// (RFC 4616 §2; Dovecot master users); LOGIN as user<sep>master user
	// where the upstream lacks PLAIN.
	ModeMaster Mode = "master"
	// ModeLoginMaster: LOGIN as user<sep>master user with the master
	// secret (Dovecot auth_master_user_separator); PLAIN without authzid
	// where the upstream lacks LOGIN.
	ModeLoginMaster Mode = "login-master"
	// ModePassthrough: the client's own username and password, with PLAIN
	// without authzid, or LOGIN where the upstream lacks PLAIN. Only for
	// logins that authn accepted with the primary password.
	ModePassthrough Mode = "passthrough"
	// ModeXCLIENT (SMTP only): Postfix's XCLIENT LOGIN= ADDR= and no AUTH;
	// passgate's address must be in smtpd_authorized_xclient_hosts.
	ModeXCLIENT Mode = "xclient"
	// ModeXOAuth2: SASL XOAUTH2 (Google's and Microsoft's) with the user's
	// OAuth 2.0 access token from Config.Tokens.
	ModeXOAuth2 Mode = "xoauth2"
	// ModeOAuthBearer: SASL OAUTHBEARER (RFC 7628) with the user's OAuth
	// 2.0 access token from Config.Tokens.
	ModeOAuthBearer Mode = "oauthbearer"
)

// protocol is a user of the package: its name and the login modes it takes.
type protocol struct {
	name  string
	modes []Mode
}

// The protocols; a new one (POP3, ManageSieve) adds its line here.
var (
	imapProtocol  = protocol{"IMAP", []Mode{ModeMaster, ModeLoginMaster, ModePassthrough, ModeXOAuth2, ModeOAuthBearer}}
	smtpProtocol  = protocol{"SMTP", []Mode{ModeMaster, ModeLoginMaster, ModePassthrough, ModeXCLIENT, ModeXOAuth2, ModeOAuthBearer}}
	pop3Protocol  = protocol{"POP3", []Mode{ModeMaster, ModeLoginMaster, ModePassthrough}}
	sieveProtocol = protocol{"ManageSieve", []Mode{ModeMaster, ModeLoginMaster, ModePassthrough}}
	allModes      = smtpProtocol.modes // what the configuration file takes
)

// UnmarshalText accepts master, login-master, passthrough, xclient (which
// only SMTP upstreams take), xoauth2 or oauthbearer.
func (m *Mode) UnmarshalText(text []byte) error { return parse(m, text, allModes) }

// NeedsMaster reports whether the mode logs in with the master user.
func (m Mode) NeedsMaster() bool { return m == ModeMaster || m == ModeLoginMaster }

// NeedsTokens reports whether the mode logs in with OAuth 2.0 access
// tokens (Config.Tokens; the configuration file's [oauth]).
func (m Mode) NeedsTokens() bool { return m == ModeXOAuth2 || m == ModeOAuthBearer }

// parse sets *v to text if it is one of allowed.
func parse[S ~string](v *S, text []byte, allowed []S) error {
	s := S(text)
	if !slices.Contains(allowed, s) {
		return fmt.Errorf("%q is not one of %s", text, join(allowed))
	}
	*v = s
	return nil
}
