// Package upstream dials the real mail server and logs in as the user,
// handing back a raw connection for the splice.
//
// The IMAP side (RFC 3501, RFC 9051) is written directly on the connection
// rather than with an IMAP client library, because after the tagged OK the
// connection must be handed over with nothing left inside a private reader:
//
//	up := &upstream.IMAP{Address: "127.0.0.1:143", Mode: upstream.ModeMaster,
//		MasterUser: "proxy", MasterSecret: secret}
//	c, err := up.Login(ctx, upstream.Login{Username: "alice", ClientIP: remote})
//	// c.Conn is positioned after the tagged OK; c.Buffered holds any bytes
//	// read past it; c.Capability is the post-login capability list.
//
// Capabilities (the pre-login list, which the front end announces before
// login) and Check connect the same way without logging in.
//
// Implementation notes:
//   - One deadline (LoginTimeout, or ctx's if earlier) covers everything from
//     the greeting to the tagged OK; ctx cancellation interrupts it at once.
//     The deadline is cleared before Login returns the connection.
//   - Secrets (the master secret, a pass-through password, the SASL blob that
//     encodes them) are never logged nor formatted into an error; text the
//     upstream sends back is withheld if it echoes any part of them.
//   - STARTTLS: bytes the upstream sent after its STARTTLS OK and before the
//     TLS handshake fail the login (plaintext injection, RFC 3501 §6.2.1
//     says the client must discard pre-TLS state); capabilities learnt before
//     TLS are forgotten.
//   - On any failure the connection is closed.
package upstream

import (
	"errors"
	"net"
	"net/netip"
)

// TLSMode says how the connection to the upstream is protected.
type TLSMode string

// TLS modes; the zero value means TLSNone.
const (
	TLSNone     TLSMode = "none"
	TLSStartTLS TLSMode = "starttls" // plain connect, then STARTTLS (RFC 3501 §6.2.1)
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (RFC 8314)
)

// Mode says how passgate logs in to the upstream as the user.
type Mode string

// Login modes; the zero value means ModeMaster.
const (
	// ModeMaster: AUTHENTICATE PLAIN with authzid = user, authcid = master
	// user (RFC 4616 §2; Dovecot master users).
	ModeMaster Mode = "master"
	// ModeLoginMaster: LOGIN user<sep>masteruser mastersecret (Dovecot
	// auth_master_user_separator).
	ModeLoginMaster Mode = "login-master"
	// ModePassthrough: the client's own username and password
	// (AUTHENTICATE PLAIN without authzid, or LOGIN without AUTH=PLAIN).
	ModePassthrough Mode = "passthrough"
)

// ErrUnavailable is wrapped by every error that means the upstream could not
// be used: dial, TLS, timeout, protocol garbage, a BYE or PREAUTH greeting,
// an unexpected close, a NO [UNAVAILABLE] answer, or ctx ending the login.
var ErrUnavailable = errors.New("upstream unavailable")

// RefusedError says the upstream answered NO or BAD to our login (e.g.
// Dovecot's NO [AUTHORIZATIONFAILED] for an unknown target user, or a wrong
// master secret).
type RefusedError struct {
	Code string // the response code, if any, e.g. "AUTHORIZATIONFAILED"
	Text string // the upstream's human text (withheld if it echoed a secret)
}

func (e *RefusedError) Error() string {
	if e.Code != "" {
		return "upstream refused login: [" + e.Code + "] " + e.Text
	}
	return "upstream refused login: " + e.Text
}

// Login is who to log in as.
type Login struct {
	Username string // normalised user to log in as
	Password string // the client's secret; used only in passthrough mode
	ClientIP netip.AddrPort
	ClientID string // IMAP ID name/version of the client, for logs
	// SessionID, if set, is sent as x-session-id with SendID so that the
	// upstream's logs name the same session as passgate's.
	SessionID string
}

// Conn is a logged-in upstream connection. The caller owns it.
type Conn struct {
	net.Conn // the upstream connection (TLS if configured), positioned after the tagged OK
	// Buffered holds bytes read past the tagged OK (usually none): untagged
	// responses that arrived while the capabilities were fetched, then raw
	// bytes. Forward them to the client before anything else.
	Buffered []byte
	// Capability is the post-login capability list, space-separated, without
	// the word CAPABILITY: from the OK's [CAPABILITY ...] code, or from a
	// CAPABILITY command sent after login if the OK had none.
	Capability string
	// Text is the human text of the upstream's tagged OK.
	Text string
}
