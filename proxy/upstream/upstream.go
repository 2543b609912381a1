// Package upstream logs in to the real mail server as the user, for every
// protocol passgate fronts, and hands the logged-in connection back.
//
// One Config describes an upstream: its address, TLS, login mode with the
// master credentials, and timeouts. Each protocol is a client made of it:
//
//	cfg := upstream.Config{Address: "127.0.0.1:143", Mode: upstream.ModeMaster,
//		MasterUser: "proxy", MasterSecret: secret}
//	c, err := cfg.IMAP().Login(ctx, upstream.Login{Username: "alice", ClientIP: remote})
//	// c.Conn is positioned after the tagged OK; c.Buffered holds any bytes
//	// read past it; c.Capability is the post-login capability list.
//
//	s, err := cfg.SMTP().Login(ctx, login) // s.Client relays MAIL, RCPT, DATA
//
// IMAP (RFC 3501, RFC 9051) is written directly on the connection rather
// than with an IMAP client library, because after the tagged OK the
// connection must be handed over with nothing left inside a private reader.
// SMTP submission (RFC 6409, RFC 4954) uses go-smtp's client, which stays
// with the connection for the relay of each message.
//
// Where each job lives: Config, its defaults and its validation
// (config.go); the TLS and login modes (modes.go); the login modes as
// credentials, the seam for new ones (credential.go; the OAuth 2.0 modes in
// oauthmode.go); one login of any
// protocol (login.go: credential, connect, dialogue, release); the dial,
// TLS and login deadline of every protocol (dial.go); the dialogues
// (imap.go, imaplogin.go, imapwire.go; smtp.go, sasllogin.go, xclient.go).
// A client says itself whether a login needs the client's secret
// (NeedsClientSecret), so a front end passes it on only then.
//
// Implementation notes:
//   - One deadline (LoginTimeout, or ctx's if earlier) covers everything from
//     the connect to the logged-in connection, whatever deadlines a library
//     sets meanwhile (boundConn); ctx cancellation interrupts it at once.
//     The deadline is lifted before the connection is handed over.
//   - Secrets (the master secret, a pass-through password, the SASL blob that
//     encodes them) are never logged nor formatted into an error; IMAP text
//     the upstream sends back is withheld if it echoes any part of them. A
//     Config given to slog logs as its address only.
//   - STARTTLS: bytes the upstream sent after its STARTTLS OK and before the
//     TLS handshake fail the login (IMAP, XCLIENT) or are dropped (go-smtp):
//     RFC 3501 §6.2.1 and RFC 3207 §4.2 say the client must discard pre-TLS
//     state; capabilities learnt before TLS are forgotten.
//   - The credential is built, and a user name holding the master user
//     separator refused, before anything is dialled; no secret goes to an
//     upstream that offers none of the credential's mechanisms.
//   - On any failure the connection is closed.
//   - The OAuth 2.0 modes (oauthmode.go) log in at most twice: a token the
//     server calls invalid is invalidated and one fresh token tried on a
//     new connection.
package upstream

import (
	"errors"
	"net"
	"net/netip"
)

// ErrUnavailable is wrapped by every error that means the upstream could not
// be used: an invalid Config, dial, TLS, timeout, protocol garbage, a BYE or
// PREAUTH greeting, an unexpected close, a NO [UNAVAILABLE] answer, or ctx
// ending the login.
var ErrUnavailable = errors.New("upstream unavailable")

// RefusedError says the upstream answered NO or BAD to our login (e.g.
// Dovecot's NO [AUTHORIZATIONFAILED] for an unknown target user, or a wrong
// master secret).
type RefusedError struct {
	Code string // the response code, if any, e.g. "AUTHORIZATIONFAILED"
	Text string // the upstream's human text (withheld if it echoed a secret)
	// Action, if set, says what an admin must do (grant a permission,
	// give consent): the OAuth 2.0 modes set it, and the front ends show
	// it to the client. Never holds a secret.
	Action string
}

// Hint says what an operator should check when the upstream refused a
// login that passgate had already accepted: that is passgate's own
// configuration failing (the master credentials, or account names that
// are not the upstream's login names), not a user's mistake.
func (e *RefusedError) Hint() string {
	if e.Code == "AUTHORIZATIONFAILED" {
		return "the upstream knows no such user, or will not let the master user log in as it: the passgate account name must be the user's login name upstream"
	}
	return "the upstream refused passgate's own login: check master_user and master_secret of this upstream (passgate check-config tests them when probe_user is set)"
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
	// Password is the client's secret; used only by a client whose
	// NeedsClientSecret is true (ModePassthrough).
	Password string
	ClientIP netip.AddrPort
	ClientID string // IMAP ID name/version of the client, for logs
	// SessionID, if set, is sent as x-session-id with SendID so that the
	// upstream's logs name the same session as passgate's.
	SessionID string
}

// Conn is a logged-in IMAP connection. The caller owns it.
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
