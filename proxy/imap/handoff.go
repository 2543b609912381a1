package imap

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

// loggedIn is a session logged in upstream, which serve relays.
type loggedIn struct {
	tag string // the client's login command's
	r   *proxy.Relayed
}

// relay sends the client the upstream's tagged OK under the client's tag,
// and starts splicing client and upstream until either side ends or the
// session is ended (the registry's end and Lifecycle.Close cancel r.Ctx, then
// call endRelay). It owns c.loggedIn from the call on. It reports whether the
// splice started: it then runs on without the caller's goroutine
// (proxy.SpliceStoppable; the connection is detached from the server's
// lifecycle meanwhile) and calls end when the session has ended.
func (c *conn) relay(end func()) bool {
	tag, r := c.loggedIn.tag, c.loggedIn.r
	c.loggedIn = nil
	ok := tag + " OK "
	if caps := proxy.OneLine(r.Up.Capability); caps != "" {
		ok += "[CAPABILITY " + caps + "] "
	}
	text := proxy.OneLine(r.Up.Text)
	if text == "" {
		text = "Logged in"
	}
	client := c.TakeOver(r.Up.Conn)
	// The OK is written before the splice so it precedes upstream bytes.
	if err := c.Write(ok + text); err != nil {
		r.Done()
		return false
	}
	client.SetDeadline(time.Time{})
	up := c.relaying(r.Up.Conn)

	// Bytes the client pipelined after its login command belong to the
	// upstream.
	buffered, _ := c.r.Peek(c.r.Buffered())
	pipelined := bytes.Clone(buffered)
	c.releaseReader() // the MaxLine buffer serves the next login; no reads follow
	upBuffered := r.Up.Buffered
	// r lives as long as the session: drop what it no longer needs (the
	// capability line is most of a parked session's strings).
	r.Up.Buffered, r.Up.Capability, r.Up.Text = nil, "", ""
	untrack := c.srv.life.Detach(c)
	stop := proxy.SpliceStoppable(
		proxy.Leg{Conn: client, Buffered: pipelined, Count: c.srv.relayCount(true), NoHalfClose: true},
		proxy.Leg{Conn: up, Buffered: upBuffered, Count: c.srv.relayCount(false)},
		c.srv.IdleTimeout, func(err error) {
			c.relayOver()
			r.Done()
			attrs := []any{"user", r.Decision.Username, "duration", time.Since(r.Started).Round(time.Millisecond)}
			if err != nil && !errors.Is(err, context.Canceled) {
				attrs = append(attrs, "err", err)
			}
			c.log.Info("imap session ended", attrs...)
			end()
			untrack()
		})
	c.byeMu.Lock()
	c.stopRelay = stop
	c.byeMu.Unlock()
	// The registry (revoked) or Close may have ended the session before
	// stop was known to them; they cancel r.Ctx first.
	if r.Ctx.Err() != nil {
		stop(context.Cause(r.Ctx))
	}
	return true
}

// endRelay ends the relay, parked or not, if it has started (see relay).
func (c *conn) endRelay(cause error) {
	c.byeMu.Lock()
	stop := c.stopRelay
	c.byeMu.Unlock()
	if stop != nil {
		stop(cause)
	}
}

// Close closes the client and upstream connections and ends the relay
// (Lifecycle.Close, and the end of every connection).
func (c *conn) Close() {
	c.PreauthConn.Close()
	c.endRelay(context.Canceled)
}

// revokedBye is what a relayed client hears when its session is ended by
// a revocation (RFC 3501 §7.1.5).
const revokedBye = "* BYE Access revoked, log in again"

// revoked ends a session the registry ended: "* BYE" to the client when
// it can (see goodbye), then cancel, which ends the splice.
func (c *conn) revoked(cancel func()) {
	defer c.endRelay(context.Canceled)
	defer cancel()
	c.goodbye(revokedBye)
}

// relayCount is the byte counter of one direction of a relayed session,
// nil without Metrics.
func (s *Server) relayCount(fromClient bool) func(int64) {
	if s.Metrics == nil {
		return nil
	}
	return func(n int64) { s.Metrics.Relayed(store.ScopeIMAP, fromClient, n) }
}
