package imap

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// relay registers the session, sends the client the upstream's tagged OK
// under the client's tag, and splices client and upstream until either
// side ends or the session is ended (the registry's end func cancels the
// splice's ctx; Close closes both connections). It owns up from the call
// on. It returns errDone or a write error, or the *respError the client
// gets when the registration refuses the login.
func (c *conn) relay(tag string, dec authn.Decision, up *upstream.Conn) error {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	started := time.Now()
	remove, err := c.register(dec, started, func() { go c.revoked(cancel) })
	if err != nil {
		up.Conn.Close()
		return err
	}
	defer remove()

	ok := tag + " OK "
	if caps := oneLine(up.Capability); caps != "" {
		ok += "[CAPABILITY " + caps + "] "
	}
	text := oneLine(up.Text)
	if text == "" {
		text = "Logged in"
	}
	client := c.TakeOver(up.Conn)
	// The OK is written before the splice so it precedes upstream bytes.
	if err := c.Write(ok + text); err != nil {
		return err
	}
	client.SetDeadline(time.Time{})
	relayed := c.wrapRelayed(client)

	// Bytes the client pipelined after its login command belong to the
	// upstream.
	buffered, _ := c.r.Peek(c.r.Buffered())
	pipelined := bytes.Clone(buffered)
	c.r = nil // frees the MaxLine buffer for the session's life; no reads follow
	err = proxy.Splice(ctx,
		proxy.Leg{Conn: relayed, Buffered: pipelined, Count: c.srv.relayCount(true)},
		proxy.Leg{Conn: up.Conn, Buffered: up.Buffered, Count: c.srv.relayCount(false)},
		c.srv.IdleTimeout)
	attrs := []any{"user", dec.Username, "duration", time.Since(started).Round(time.Millisecond)}
	if err != nil && !errors.Is(err, context.Canceled) {
		attrs = append(attrs, "err", err)
	}
	c.log.Info("imap session ended", attrs...)
	return errDone
}

// revokedBye is what a relayed client hears when its session is ended by
// a revocation (RFC 3501 §7.1.5).
const revokedBye = "* BYE Access revoked, log in again"

// revoked ends a session the registry ended: "* BYE" to the client when
// that is safe (between two upstream responses, see byeConn), then cancel,
// which ends the splice.
func (c *conn) revoked(cancel func()) {
	defer cancel()
	c.byeMu.Lock()
	bc := c.bye
	c.byeMu.Unlock()
	if bc != nil {
		bc.goodbye(revokedBye)
	}
}

// register records the session in Sessions before the client hears OK, so
// that revocation can end it (end cancels the splice). Sessions checks the
// credential again after recording it: a revocation that came during the
// upstream login refuses the login (NO [AUTHENTICATIONFAILED]), an account
// at its session limit gets NO [LIMIT], and a store that cannot tell
// refuses it as unavailable.
func (c *conn) register(dec authn.Decision, started time.Time, end func()) (remove func(), err error) {
	if c.srv.Sessions == nil {
		return func() {}, nil
	}
	remove, err = c.srv.Sessions.Add(c.ctx, sessions.Session{
		ID:       c.id,
		Protocol: store.ScopeIMAP,
		Remote:   c.remote,
		Started:  started,
		Login:    dec,
	}, end)
	switch {
	case errors.Is(err, sessions.ErrLimit):
		c.log.Info("imap login refused: session limit of the account reached", "user", dec.Username, "err", err)
		return nil, errSessionLimit
	case errors.Is(err, sessions.ErrRevoked):
		c.log.Info("imap login refused: credential changed during the upstream login",
			"user", dec.Username, "app_password", dec.AppPasswordID, "err", err)
		return nil, errAuthFailed
	case err != nil:
		c.log.Warn("imap login refused: session check failed", "user", dec.Username, "err", err)
		return nil, errAuthUnavailable
	}
	return remove, nil
}

// relayCount is the byte counter of one direction of a relayed session,
// nil without Metrics.
func (s *Server) relayCount(fromClient bool) func(int64) {
	if s.Metrics == nil {
		return nil
	}
	return func(n int64) { s.Metrics.Relayed(store.ScopeIMAP, fromClient, n) }
}
