package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
)

// SMTP's STARTTLS (RFC 3207) runs here, on the link, rather than in
// go-smtp's client: go-smtp keeps the TLS connection it makes to itself,
// and the message body (SMTPData) must be written onto the very
// connection the client speaks on.

// startTLS reads the greeting, says EHLO and STARTTLS, and runs the TLS
// handshake: k.conn is TLS afterwards. It returns the greeting (for
// go-smtp's client, which reads one before its own EHLO).
func (u *SMTP) startTLS(k *link) (greeting []byte, err error) {
	br := bufio.NewReader(&cappedReader{r: k.conn, left: maxPreTLSReplies})
	r := textproto.NewReader(br)
	if greeting, err = readGreeting(r); err != nil {
		return nil, err
	}
	ext, err := rawEHLO(k.conn, r, u.config().localName())
	if err != nil {
		return nil, err
	}
	if err := rawStartTLS(k, br, ext); err != nil {
		return nil, err
	}
	return greeting, nil
}

// readGreeting reads the 220 greeting and returns it as it came (each
// line ending in CRLF).
func readGreeting(r *textproto.Reader) ([]byte, error) {
	_, msg, err := r.ReadResponse(220)
	if err != nil {
		return nil, fmt.Errorf("upstream greeting: %w", err)
	}
	var b []byte
	lines := strings.Split(msg, "\n")
	for i, line := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b = fmt.Appendf(b, "220%s%s\r\n", sep, line)
	}
	return b, nil
}

// rawEHLO says EHLO and returns the keywords (upper case) and parameters.
func rawEHLO(conn net.Conn, r *textproto.Reader, name string) (map[string]string, error) {
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", name); err != nil {
		return nil, fmt.Errorf("upstream ehlo: %w", err)
	}
	_, msg, err := r.ReadResponse(250)
	if err != nil {
		return nil, fmt.Errorf("upstream ehlo: %w", err)
	}
	ext := make(map[string]string)
	lines := strings.Split(msg, "\n")
	for _, line := range lines[1:] {
		k, v, _ := strings.Cut(line, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, nil
}

// rawStartTLS runs STARTTLS (RFC 3207). Bytes buffered after the 220 would
// be injected plaintext: they refuse the upgrade (RFC 3207 §4.2).
func rawStartTLS(k *link, br *bufio.Reader, ext map[string]string) error {
	if _, ok := ext["STARTTLS"]; !ok {
		return errors.New("upstream starttls: the upstream does not offer STARTTLS")
	}
	if _, err := fmt.Fprintf(k.conn, "STARTTLS\r\n"); err != nil {
		return fmt.Errorf("upstream starttls: %w", err)
	}
	if _, _, err := textproto.NewReader(br).ReadResponse(220); err != nil {
		return fmt.Errorf("upstream starttls: %w", err)
	}
	if br.Buffered() > 0 {
		return errors.New("upstream starttls: unexpected data after 220")
	}
	return k.handshake()
}

// maxPreTLSReplies bounds what startTLS reads: the greeting, the EHLO
// reply and the STARTTLS reply, which come in plaintext (anyone on the
// path can write them) and are a few hundred bytes from a real server.
// net/textproto has no limit of its own; go-smtp's client, which reads
// them when there is no STARTTLS, has one.
const maxPreTLSReplies = 64 << 10

// errRepliesTooLong is what a cappedReader returns past its limit.
var errRepliesTooLong = fmt.Errorf("replies longer than %d bytes before STARTTLS", maxPreTLSReplies)

// cappedReader reads at most left bytes from r, then errRepliesTooLong.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errRepliesTooLong
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// replayConn is a connection whose first reads return pending, bytes read
// from it before: the greeting that go-smtp's client reads first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
