// Package proxy is what passgate's mail front-ends have in common: the
// contract each one keeps, and the relay after login.
//
// The contract (frontend.go, limits.go): an Authenticator decides each
// login; Sessions registers each relayed session, so that revocation ends
// it; Limits bound what a client costs before it logs in (the same keys and
// defaults for every protocol); the text refusing a primary password of an
// MFA account is MFAText; and the lifecycle is net/http's: Serve and
// ServeTLS until Shutdown (which waits for the sessions or its context) or
// Close (at once), then ErrServerClosed. proxy/imap and proxy/smtp keep it;
// proxy/upstream logs in to the real server and proxy/sessions owns the
// live sessions.
//
// The relay: after login passgate must be invisible, so Splice copies bytes
// without looking at them:
//
//	err := proxy.Splice(ctx, proxy.Leg{Conn: client, Buffered: pending},
//		proxy.Leg{Conn: up.Conn, Buffered: up.Buffered}, 0)
//
// and proxy/sessions ends a session when its credential is gone (cancel ctx
// and Splice closes both connections). SpliceAsync is the same relay
// without a waiting caller: on Linux a silent session is parked in a
// shared epoll set and holds no goroutine at all (proxy/imap uses it with
// Lifecycle.Detach). Session ids (NewSessionID) tie a
// session's log lines, audit record and registry entry together.
package proxy
