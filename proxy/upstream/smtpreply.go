package upstream

import (
	"fmt"
	"net"
)

// maxSMTPReply bounds one reply go-smtp's client reads from the upstream:
// its lines together (RFC 5321 §4.2.1: "250-" lines go on until a "250 "
// line). go-smtp limits each line to 2000 bytes but not how many come, so
// an upstream sending continuation lines without end would be kept in
// memory until the command's deadline. A real EHLO reply is a few hundred
// bytes.
const maxSMTPReply = 64 << 10

// errReplyTooLong is what replyLimitConn returns past maxSMTPReply.
var errReplyTooLong = fmt.Errorf("reply longer than %d bytes", maxSMTPReply)

// replyLimitConn is the connection go-smtp's client reads replies from:
// a read that takes the reply in progress past maxSMTPReply fails (and
// every read after it, the connection being out of step).
type replyLimitConn struct {
	net.Conn
	line  int  // bytes of the current line so far
	cont  bool // the current line is a continuation line ("250-")
	reply int  // bytes of the current reply so far
	err   error
}

func (c *replyLimitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	for _, b := range p[:n] {
		if c.line == 3 {
			c.cont = b == '-'
		}
		c.line++
		c.reply++
		if c.reply > maxSMTPReply {
			c.err = errReplyTooLong
			return 0, c.err
		}
		if b == '\n' {
			if !c.cont {
				c.reply = 0
			}
			c.line, c.cont = 0, false
		}
	}
	return n, err
}
