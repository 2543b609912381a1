package smtp

import (
	"context"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy/upstream"
)

// Mail checks the sender and starts the transaction upstream, the path
// re-encoded (upstreamPath: go-smtp hands it over decoded). The
// parameters SIZE, BODY, SMTPUTF8, RET and ENVID go upstream; SMTPUTF8,
// BODY=8BITMIME and DSN parameters the session's upstream does not offer are
// refused with 555 5.5.4 rather than dropped (go-smtp's client would drop
// DSN ones silently). AUTH= (RFC 4954 §5) is not forwarded: the upstream
// knows who is logged in.
func (ss *session) Mail(from string, opts *gosmtp.MailOptions) error {
	a := ss.auth.Load()
	if a == nil {
		return errAuthRequired // RFC 4954 §6
	}
	if ss.srv.CheckSender {
		if err := ss.checkSender(a.decision.Username, from); err != nil {
			return err
		}
	}
	path, err := upstreamPath(from)
	if err != nil {
		return errBadSender
	}
	fwd := forwardedMailOptions(opts)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.rcpts = 0
	// One retry with a new connection: an idle upstream connection may
	// have been closed by the server since the last message.
	for attempt := 0; ; attempt++ {
		if ss.up == nil {
			up, err := ss.srv.Upstream.Login(ss.ctx, ss.login(a))
			if err != nil {
				ss.log().Warn("smtp upstream connect failed", "user", a.decision.Username, "err", err)
				return errUpstreamFailed
			}
			ss.setUpstream(up)
		}
		if err := mailSupported(ss.up, fwd); err != nil {
			return err
		}
		err := ss.up.Client.Mail(path, fwd)
		if _, isReply := asSMTPError(err); err != nil && !isReply && attempt == 0 {
			ss.dropUpstream()
			continue
		}
		if err != nil {
			return ss.upstreamReply(err)
		}
		ss.upTx = true
		return nil
	}
}

// forwardedMailOptions is what goes upstream of the client's MAIL options.
func forwardedMailOptions(opts *gosmtp.MailOptions) *gosmtp.MailOptions {
	if opts == nil {
		return nil
	}
	fwd := *opts
	fwd.Auth = nil
	return &fwd
}

// mailSupported refuses MAIL parameters the upstream does not offer.
func mailSupported(up *upstream.SMTPConn, opts *gosmtp.MailOptions) error {
	if opts == nil {
		return nil
	}
	if opts.UTF8 && !up.Has("SMTPUTF8") {
		return errParamUnsupported("SMTPUTF8") // RFC 6531 §3.4
	}
	if opts.Body == gosmtp.Body8BitMIME && !up.Has("8BITMIME") {
		return errParamUnsupported("BODY=8BITMIME") // RFC 6152 §3
	}
	if (opts.Return != "" || opts.EnvelopeID != "") && !up.Has("DSN") {
		return errParamUnsupported("DSN") // RFC 3461 §4
	}
	return nil
}

// Rcpt forwards the recipient at once, re-encoded (upstreamPath); the
// upstream's reply is the client's.
func (ss *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if ss.auth.Load() == nil {
		return errAuthRequired
	}
	path, err := upstreamPath(to)
	if err != nil {
		return errBadRecipient
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.up == nil || !ss.upTx {
		return errUpstreamFailed
	}
	if opts != nil && (len(opts.Notify) > 0 || opts.OriginalRecipient != "") && !ss.up.Has("DSN") {
		return errParamUnsupported("DSN") // RFC 3461 §4
	}
	if err := ss.up.Client.Rcpt(path, opts); err != nil {
		return ss.upstreamReply(err)
	}
	ss.rcpts++
	return nil
}

// upstreamReply turns an upstream failure into the client's reply: a reply
// from the upstream goes through unchanged, except 421 (the upstream is
// closing: the connection is dropped and the client gets 451 with the
// upstream's text); an I/O failure drops the connection and answers 451.
// ss.mu must be held.
func (ss *session) upstreamReply(err error) error {
	se, ok := asSMTPError(err)
	if !ok {
		ss.log().Warn("smtp upstream failed", "err", err)
		ss.dropUpstream()
		return errUpstreamFailed
	}
	if se.Code == 421 {
		ss.dropUpstream()
		ec := se.EnhancedCode
		if ec[0] != 4 {
			ec = gosmtp.EnhancedCode{4, 3, 0}
		}
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: ec, Message: se.Message}
	}
	return se
}

// senderLookupTimeout bounds the alias lookup of the sender check.
const senderLookupTimeout = 10 * time.Second

// checkSender enforces the sender policy (RFC 6409 §6.1): the reverse path
// must be the username or one of its aliases, compared case-insensitively.
// The null sender is refused: a submission client has no reason to send
// bounces.
func (ss *session) checkSender(username, from string) error {
	if from == "" {
		return errSenderNotOwned
	}
	if own := OwnAddress(username, ss.srv.DefaultDomain); strings.EqualFold(from, username) || (own != "" && strings.EqualFold(from, own)) {
		return nil
	}
	if ss.srv.Senders == nil {
		return errSenderNotOwned
	}
	ctx, cancel := context.WithTimeout(ss.ctx, senderLookupTimeout)
	defer cancel()
	aliases, err := ss.srv.Senders(ctx, username)
	if err != nil {
		ss.log().Warn("smtp sender lookup failed", "user", username, "err", err)
		return errSenderLookup
	}
	for _, addr := range aliases {
		if strings.EqualFold(from, addr) {
			return nil
		}
	}
	ss.log().Info("smtp sender refused", "user", username, "from", from,
		"hint", "the account may send as its name and its aliases (passgate user alias add USER ADDRESS); an account named like the upstream login (no @) gets name@domain with smtp.default_domain")
	return errSenderNotOwned
}
