package imap

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// relay sends the client the upstream's tagged OK under the client's tag,
// registers the session, and splices client and upstream until either side
// ends or the session is ended (the Registry's end func cancels the
// splice's ctx; Close closes both connections). It owns up from the call
// on. It always returns errDone or a write error.
func (c *conn) relay(tag string, dec authn.Decision, up *upstream.Conn) error {
	ok := tag + " OK "
	if caps := oneLine(up.Capability); caps != "" {
		ok += "[CAPABILITY " + caps + "] "
	}
	text := oneLine(up.Text)
	if text == "" {
		text = "Logged in"
	}
	client := c.takeOver(up.Conn)
	// The OK is written before the splice so it precedes upstream bytes.
	if err := c.write(ok + text); err != nil {
		return err
	}
	client.SetDeadline(time.Time{})
	relayed := c.wrapRelayed(client)

	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	started := time.Now()
	if c.srv.Sessions != nil {
		remove := c.srv.Sessions.Add(proxy.Session{
			ID:            c.id,
			Protocol:      string(store.ScopeIMAP),
			Username:      dec.Username,
			AppPasswordID: dec.AppPasswordID,
			Remote:        c.remote,
			Started:       started,
		}, cancel)
		defer remove()
	}
	// Bytes the client pipelined after its login command belong to the
	// upstream.
	buffered, _ := c.r.Peek(c.r.Buffered())
	err := proxy.Splice(ctx,
		proxy.Leg{Conn: relayed, Buffered: bytes.Clone(buffered)},
		proxy.Leg{Conn: up.Conn, Buffered: up.Buffered},
		c.srv.IdleTimeout)
	attrs := []any{"user", dec.Username, "duration", time.Since(started).Round(time.Millisecond)}
	if err != nil && !errors.Is(err, context.Canceled) {
		attrs = append(attrs, "err", err)
	}
	c.log.Info("imap session ended", attrs...)
	return errDone
}
