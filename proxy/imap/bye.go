package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// byeTimeout bounds the write of a goodbye to a relayed client.
const byeTimeout = time.Second

// maxLiteralTail is what byeConn keeps of a line to find a literal
// announcement at its end: "{4294967295}" and the CR.
const maxLiteralTail = 16

// byeConn is the client connection of a relayed session. It follows the
// upstream's responses as Splice writes them, so that Shutdown can tell
// whether "* BYE" would fall between two responses, where RFC 3501 §7.1.5
// allows it at any time, or inside one (a literal, or half a line), where
// it would corrupt the client's parse.
//
// The price is that Splice copies the upstream's bytes through user space
// instead of splice(2) when the client connection is plain TCP (a TLS
// client leg is copied that way anyway).
type byeConn struct {
	net.Conn

	// turn is held for the whole of each Write and by goodbye (a channel
	// rather than a mutex so that goodbye can give up waiting). It guards
	// the fields below.
	turn    chan struct{}
	closed  bool   // goodbye ran: no more writes
	atEnd   bool   // the last byte written ended a response line
	literal int64  // literal bytes still to come (RFC 3501 §4.3)
	tail    []byte // the end of the current line, at most maxLiteralTail bytes
}

// newByeConn wraps c; the bytes written to c so far must end a response.
func newByeConn(c net.Conn) *byeConn {
	return &byeConn{Conn: c, atEnd: true, turn: make(chan struct{}, 1)}
}

// Write writes p and follows the response stream.
func (b *byeConn) Write(p []byte) (int, error) {
	b.turn <- struct{}{}
	defer func() { <-b.turn }()
	if b.closed {
		return 0, net.ErrClosed
	}
	n, err := b.Conn.Write(p)
	b.scan(p[:n])
	return n, err
}

// errNoHalfClose is what CloseWrite returns.
var errNoHalfClose = errors.New("imap: a relayed client is not half-closed")

// CloseWrite refuses, so that Splice closes both connections when the
// upstream ends its side: an IMAP server that closes has ended the session
// (RFC 3501 §3.4, §7.1.5), and a client left half-closed (one that does not
// close on EOF, or is gone) would hold the session until the idle timeout.
// Dovecot's and nginx's proxies close the client then too. A client's own
// half-close still reaches the upstream, which may answer before it closes.
func (b *byeConn) CloseWrite() error { return errNoHalfClose }

// scan follows responses: lines, each possibly announcing a literal of n
// bytes with "{n}" before its CRLF, after which the line goes on (RFC 3501
// §4.3, §7; literal8 "~{n}" of RFC 3516 ends the same way).
func (b *byeConn) scan(p []byte) {
	for len(p) > 0 {
		if b.literal > 0 {
			n := min(int64(len(p)), b.literal)
			b.literal -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.keep(p)
			b.atEnd = false
			return
		}
		b.keep(p[:i])
		p = p[i+1:]
		n, _, ok := parseLiteral(bytes.TrimSuffix(b.tail, []byte{'\r'}))
		b.tail = b.tail[:0]
		b.literal, b.atEnd = n, !ok
	}
}

// keep appends p to the line's tail, keeping its last maxLiteralTail bytes.
func (b *byeConn) keep(p []byte) {
	if len(p) >= maxLiteralTail {
		b.tail = append(b.tail[:0], p[len(p)-maxLiteralTail:]...)
		return
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - maxLiteralTail; over > 0 {
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
}

// goodbye writes line (with CRLF) if that is safe: the last response is
// complete and no write is in progress, or the one in progress ends within
// byeTimeout (a client that does not read gets no goodbye). From then on
// the connection takes no more writes. It reports whether the line was
// written.
func (b *byeConn) goodbye(line string) bool {
	wait := time.NewTimer(byeTimeout)
	defer wait.Stop()
	select {
	case b.turn <- struct{}{}:
		defer func() { <-b.turn }()
	case <-wait.C:
		return false
	}
	if b.closed {
		return false
	}
	b.closed = true
	if !b.atEnd {
		return false
	}
	b.Conn.SetWriteDeadline(time.Now().Add(byeTimeout))
	_, err := io.WriteString(b.Conn, line+"\r\n")
	return err == nil
}

// wrapRelayed wraps the client connection of a session whose relay starts
// now and keeps it for Shutdown's goodbye.
func (c *conn) wrapRelayed(nc net.Conn) *byeConn {
	bc := newByeConn(nc)
	c.byeMu.Lock()
	defer c.byeMu.Unlock()
	c.bye = bc
	return bc
}

// ShutdownExpired says "* BYE Server shutting down" to the client of a
// relayed session if that is safe (see byeConn) when Shutdown's grace
// period ends (proxy.ShutdownNotifier). The session is not closed.
func (c *conn) ShutdownExpired() {
	c.byeMu.Lock()
	bc := c.bye
	c.byeMu.Unlock()
	if bc != nil {
		bc.goodbye("* BYE Server shutting down")
	}
}
