// Package smtp is passgate's SMTP submission front end (RFC 6409, RFC 4954):
// go-smtp's server takes the client's AUTH, and each message is streamed to
// the upstream submission server logged in as that user.
//
// A Server answers submission on port 587 (Serve, STARTTLS when TLSConfig is
// set, RFC 3207) and submissions on port 465 (ServeTLS, implicit TLS,
// RFC 8314). AUTH PLAIN (RFC 4616) and AUTH LOGIN (draft-murchison-sasl-login)
// credentials go to the Authenticator with protocol smtp; on OK the Upstream
// (upstream.SMTP) logs in to the real server as the user (master,
// login-master, xclient or passthrough) and from then on every MAIL, RCPT
// and DATA is forwarded through the client it hands back as it arrives, the
// upstream's reply going back to the client:
//
//	srv := &smtp.Server{Auth: verifier, Upstream: upCfg.SMTP(), TLSConfig: cfg, CheckSender: true}
//	go srv.ServeTLS(ln465)
//	go srv.Serve(ln587)
//	...
//	srv.Shutdown(ctx)
package smtp

// Implementation notes (invariants every change must keep):
//
//   - No upstream dial before the Authenticator said OK: Upstream.Login is
//     called from authenticate after an authn.OK decision, and later only to
//     replace a lost connection of an authenticated session.
//   - Never log a secret: the secret lives in the authn.Attempt, in the
//     upstream login and (only if Upstream.NeedsClientSecret, to log in again
//     after the upstream dropped the connection) in the session's authState;
//     none of them is logged or formatted into an error. Message content is
//     never logged either.
//   - Nothing is acknowledged before the upstream acknowledged it: MAIL,
//     RCPT and DATA get the upstream's reply; a client-side failure in the
//     middle of DATA closes the upstream connection without the final dot, so
//     the upstream discards the partial message (RFC 5321 §4.1.1.4).
//   - The body is streamed: one fixed buffer per message, never the whole
//     message in memory. A DATA body is read from go-smtp's buffered
//     connection reader in chunks (dataBody), not a byte at a time, and
//     written upstream in chunks (upstream.SMTPData).
//   - No bare CR or LF reaches the upstream in a message (SMTP smuggling):
//     dataBody (DATA) or lineEndReader (BDAT) stops the body before the
//     first one, and the message is refused (550 5.5.2) and aborted
//     upstream; upstream.SMTPData refuses one again. dataBody ends a
//     message exactly where go-smtp's own reader does (FuzzDataBody).
//   - Every client read has a deadline (ReadTimeout, extended per read during
//     DATA), capped at Limits.PreauthTimeout until AUTH succeeds (clientConn's
//     SetReadDeadline and SetWriteDeadline); every upstream command has one
//     (CommandTimeout), including each write of the body.
//   - Abuse is bounded before AUTH (Server.Limits): Conns is checked before the
//     greeting; MaxPreauthCommands counts every line go-smtp reads before a
//     successful AUTH (by the read deadline it sets before each one, so
//     commands that reach no session hook, NOOP, VRFY or unknown verbs,
//     count too); MaxFailedLogins counts refused AUTHs per connection,
//     across STARTTLS; a TLS ClientHello on the plain port ends the
//     connection instead of waiting for a command line.
//   - Every connection has a random session id (clientConn.id): it is in
//     each log line of the connection, in the authn.Attempt (audit) and in
//     the registered sessions.Session. go-smtp's own error log lines (a panic,
//     an I/O error) carry the remote address instead.
//
// Replies go-smtp gives before any hook of ours runs, which passgate
// therefore cannot change: 454 4.7.0 for undecodable base64 in AUTH (RFC
// 4954 §4 asks for 501 5.5.2), 523 5.7.10 for AUTH without TLS when
// AllowCleartext is off (RFC 5248 "Encryption Needed"; AUTH is not
// advertised then), 502 5.5.1 for RCPT before MAIL, DATA before RCPT and
// AUTH or MAIL before EHLO (RFC 5321 §4.1.4 suggests 503), 500 5.5.4 for an
// unknown MAIL parameter (RFC 5321 §4.1.1.11 suggests 555), and 500 5.4.0
// with a close for a line over 2000 bytes.
