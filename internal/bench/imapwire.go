package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// imapConn is a lean IMAP client (RFC 3501): enough for LOGIN, SELECT,
// UID SEARCH, APPEND, UID FETCH, NOOP and LOGOUT, with no goroutine of its
// own. A load loop keeps one imapConn and reuses its reader for every
// connection it opens.
type imapConn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration // deadline of each command, from its start
	tag     int
	wbuf    []byte
	long    []byte // a line longer than the reader's buffer
}

// errNotOK is a tagged NO or BAD (or an unexpected greeting).
var errNotOK = errors.New("not OK")

// newIMAPConn returns an unconnected client whose reader holds bufSize bytes.
func newIMAPConn(bufSize int, timeout time.Duration) *imapConn {
	return &imapConn{r: bufio.NewReaderSize(nil, bufSize), timeout: timeout}
}

// connect dials addr (and TLS when tlsConf is not nil) and reads the
// greeting.
func (c *imapConn) connect(ctx context.Context, addr string, tlsConf *tls.Config) error {
	nc, err := dialLeg(ctx, addr, tlsConf, c.timeout)
	if err != nil {
		return err
	}
	c.nc, c.tag = nc, 0
	c.r.Reset(nc)
	line, err := c.readLine()
	if err != nil {
		c.close()
		return fmt.Errorf("imap greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("* OK")) {
		c.close()
		return fmt.Errorf("imap greeting %q: %w", clip(line), errNotOK)
	}
	return nil
}

// dialLeg connects to addr, over TLS when tlsConf is not nil, within
// timeout.
func dialLeg(ctx context.Context, addr string, tlsConf *tls.Config, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	nc.SetDeadline(time.Now().Add(timeout))
	if tlsConf == nil {
		return nc, nil
	}
	tc := tls.Client(nc, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

func (c *imapConn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// readLine reads one line without its CRLF; it is valid until the next read.
func (c *imapConn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.long = append(c.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(c.long) > maxLine {
				return nil, errors.New("response line too long")
			}
			line, err = c.r.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'}), nil
}

// maxLine bounds a response line (literals are not lines).
const maxLine = 1 << 20

// send writes "<tag> <cmd>\r\n" and returns the tag. The command may hold
// a secret: it never goes into an error.
func (c *imapConn) send(cmd []byte) ([]byte, error) {
	c.tag++
	c.wbuf = append(c.wbuf[:0], 'b')
	c.wbuf = strconv.AppendInt(c.wbuf, int64(c.tag), 10)
	tagLen := len(c.wbuf)
	c.wbuf = append(c.wbuf, ' ')
	c.wbuf = append(c.wbuf, cmd...)
	c.wbuf = append(c.wbuf, '\r', '\n')
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return c.wbuf[:tagLen:tagLen], nil
}

// handler receives the untagged lines of a reply (line) and the literals
// in them (literal must consume exactly n bytes of r). Either may be nil:
// lines are ignored, literals discarded.
type handler struct {
	line    func(line []byte) error
	literal func(r *bufio.Reader, n int64) error
}

// await reads the reply to tag up to its tagged line; a continuation
// request ("+") returns errContinue. A tagged NO or BAD is an error
// quoting the server's line.
func (c *imapConn) await(tag []byte, h handler) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if n, ok := literalSize(line); ok {
			if h.line != nil {
				if err := h.line(line); err != nil {
					return err
				}
			}
			if err := c.literal(h, n); err != nil {
				return err
			}
			continue
		}
		switch {
		case len(line) > len(tag) && bytes.HasPrefix(line, tag) && line[len(tag)] == ' ':
			if rest := line[len(tag)+1:]; !bytes.HasPrefix(rest, []byte("OK")) {
				return fmt.Errorf("%q: %w", clip(rest), errNotOK)
			}
			return nil
		case len(line) > 0 && line[0] == '+':
			return errContinue
		case h.line != nil:
			if err := h.line(line); err != nil {
				return err
			}
		}
	}
}

var errContinue = errors.New("continuation request")

func (c *imapConn) literal(h handler, n int64) error {
	if h.literal != nil {
		return h.literal(c.r, n)
	}
	_, err := c.r.Discard(int(n))
	return err
}

// literalSize returns n if line ends with a literal "{n}" (or "{n+}").
func literalSize(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSuffix(line[i+1:len(line)-1], []byte{'+'})), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// command sends cmd and awaits its tagged OK.
func (c *imapConn) command(cmd []byte, h handler) error {
	tag, err := c.send(cmd)
	if err != nil {
		return err
	}
	return c.await(tag, h)
}

// login connects, logs in with the prepared LOGIN command, and leaves the
// connection open.
func (c *imapConn) login(ctx context.Context, addr string, tlsConf *tls.Config, loginCmd []byte) error {
	if err := c.connect(ctx, addr, tlsConf); err != nil {
		return err
	}
	if err := c.command(loginCmd, handler{}); err != nil {
		c.close()
		return fmt.Errorf("LOGIN: %w", err)
	}
	return nil
}

// logout sends LOGOUT, awaits its OK and closes the connection.
func (c *imapConn) logout() error {
	err := c.command([]byte("LOGOUT"), handler{})
	c.close()
	if err != nil {
		return fmt.Errorf("LOGOUT: %w", err)
	}
	return nil
}

// loginCommand is `LOGIN "user" "secret"`; a user or secret that a quoted
// string cannot carry is refused, naming the field only.
func loginCommand(user, secret string) ([]byte, error) {
	b := []byte("LOGIN ")
	var err error
	if b, err = appendQuoted(b, "user", user); err != nil {
		return nil, err
	}
	b = append(b, ' ')
	return appendQuoted(b, "secret", secret)
}

// appendQuoted appends s as an IMAP quoted string (RFC 3501 §4.3).
func appendQuoted(b []byte, field, s string) ([]byte, error) {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\r', '\n', 0:
			return nil, fmt.Errorf("%s: contains CR, LF or NUL, which a quoted string cannot carry", field)
		case '"', '\\':
			b = append(b, '\\', ch)
		default:
			b = append(b, ch)
		}
	}
	return append(b, '"'), nil
}

// clip shortens a server line for an error message.
func clip(line []byte) string {
	const max = 120
	if len(line) > max {
		return string(line[:max]) + "..."
	}
	return string(line)
}
