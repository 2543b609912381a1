package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxResponse bounds one upstream response line, literals included.
const maxResponse = 64 << 10

// wire is one IMAP dialogue before hand-off: the link, a reader over it,
// and what the dialogue learnt so far.
type wire struct {
	link    *link
	br      *bufio.Reader
	tagN    int
	caps    []string // last capability list seen; nil = unknown
	secrets []string // to withhold from error text
	bye     string   // text of an untagged BYE, for the error that follows
}

// wireBuffer is the size of a wire's reader: a greeting or a tagged OK
// with its capabilities fits, a longer response is read in pieces
// (readLine). Every login reads through one (the pool dials one per
// login), so the 4 KiB default was an eighth of a warm login's garbage.
const wireBuffer = 1024

func newWire(l *link) *wire {
	return &wire{link: l, br: bufio.NewReaderSize(l.conn, wireBuffer)}
}

// close ends the dialogue and closes the connection.
func (w *wire) close() { w.link.close() }

// unavailable wraps an I/O failure, naming ctx's error if ctx ended it and
// the upstream's BYE if it sent one.
func (w *wire) unavailable(op string, err error) error {
	err = w.link.unavailable(op, err)
	if w.bye != "" {
		return fmt.Errorf("%w (after BYE %q)", err, w.withhold(w.bye))
	}
	return err
}

// garbage reports a response we cannot make sense of.
func (w *wire) garbage(op string, r *response) error {
	return fmt.Errorf("upstream %s: %w: unexpected response %q", op, ErrUnavailable, w.withhold(r.line))
}

func (w *wire) nextTag() string {
	tag := "p" + strconv.Itoa(w.tagN)
	w.tagN++
	return tag
}

// withhold returns upstream text for an error or log, shortened, or a
// placeholder if it contains any 8-byte piece of a secret (a server that
// echoes our command line back).
func (w *wire) withhold(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	for _, secret := range w.secrets {
		k := min(8, len(secret))
		for i := 0; k > 0 && i+k <= len(secret); i++ {
			if strings.Contains(s, secret[i:i+k]) {
				return "(withheld: echoes credentials)"
			}
		}
	}
	return s
}

// response is one upstream response, literals included.
type response struct {
	raw    []byte // as received, with CRLF
	line   string // raw without the final CRLF
	tag    string // "*", "+" or a command tag
	status string // OK, NO, BAD, BYE or PREAUTH (upper case); "" for data
	code   string // response code atom, upper case (RFC 3501 §7.1)
	args   string // the rest of the response code
	text   string // human text
	kind   string // data responses: first word after "* ", upper case
	rest   string // data responses: what follows kind
}

// read reads one response: a line, plus any literal it announces ({n} at the
// end of a line, RFC 3501 §4.3) and the line that continues after it.
func (w *wire) read(op string) (*response, error) {
	var raw []byte
	for {
		line, err := w.readLine(maxResponse - len(raw))
		if err != nil {
			return nil, w.unavailable(op, err)
		}
		if raw == nil {
			raw = line // readLine's own copy: most responses are one line
		} else {
			raw = append(raw, line...)
		}
		n, ok := literalSize(line)
		if !ok {
			break
		}
		if n > int64(maxResponse-len(raw)) {
			return nil, fmt.Errorf("upstream %s: %w: response too long", op, ErrUnavailable)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(w.br, lit); err != nil {
			return nil, w.unavailable(op, err)
		}
		raw = append(raw, lit...)
	}
	return parseResponse(raw), nil
}

var errLineTooLong = errors.New("response too long")

// readLine reads through the next LF, at most limit bytes.
func (w *wire) readLine(limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := w.br.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// literalSize reports the n of a line ending in {n} or {n+} (CRLF
// stripped).
func literalSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(string(line[open+1:len(line)-1]), "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseResponse splits a response into tag, status, code and text
// (RFC 3501 §7: resp-cond-state, resp-cond-bye, continue-req).
func parseResponse(raw []byte) *response {
	line := strings.TrimRight(string(raw), "\r\n")
	r := &response{raw: raw, line: line}
	r.tag, line, _ = strings.Cut(line, " ")
	if r.tag == "+" {
		r.text = line
		return r
	}
	word, after, _ := strings.Cut(line, " ")
	switch up := strings.ToUpper(word); up {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		r.status = up
		r.text = after
		if strings.HasPrefix(after, "[") {
			if end := strings.IndexByte(after, ']'); end > 0 {
				code := after[1:end]
				r.code, r.args, _ = strings.Cut(code, " ")
				r.code = strings.ToUpper(r.code)
				r.text = strings.TrimPrefix(after[end+1:], " ")
			}
		}
	default:
		r.kind, r.rest = up, after
	}
	return r
}

// capabilities returns the capability list a response carries, if any: a
// CAPABILITY response code or an untagged CAPABILITY response.
func (r *response) capabilities() ([]string, bool) {
	switch {
	case r.code == "CAPABILITY":
		return strings.Fields(r.args), true
	case r.tag == "*" && r.kind == "CAPABILITY":
		return strings.Fields(r.rest), true
	}
	return nil, false
}

// hasCap reports whether the last capability list names c.
func (w *wire) hasCap(c string) bool {
	for _, have := range w.caps {
		if strings.EqualFold(have, c) {
			return true
		}
	}
	return false
}

// send writes a command. Each chunk but the last ends in a literal header
// or waits for a SASL continuation: the next chunk goes only after the
// server's "+" (RFC 3501 §7.5). If the server answers the tag instead, that
// answer is returned and the rest is not sent.
func (w *wire) send(op, tag string, chunks ...[]byte) (*response, error) {
	for i, c := range chunks {
		if _, err := w.link.conn.Write(c); err != nil {
			return nil, w.unavailable(op, err)
		}
		if i == len(chunks)-1 {
			break
		}
		r, err := w.await(op, tag, true)
		if err != nil || r.tag != "+" {
			return r, err
		}
	}
	return w.await(op, tag, false)
}

// await reads responses up to the tagged one (or a continuation, if
// allowed), remembering capabilities on the way. Untagged responses other
// than CAPABILITY are skipped.
func (w *wire) await(op, tag string, continuation bool) (*response, error) {
	for {
		r, err := w.read(op)
		if err != nil {
			return nil, err
		}
		if caps, ok := r.capabilities(); ok {
			w.caps = caps
		}
		switch {
		case r.tag == tag && (r.status == "OK" || r.status == "NO" || r.status == "BAD"):
			return r, nil
		case r.tag == "+" && continuation:
			return r, nil
		case r.tag == "*":
			if r.status == "BYE" {
				w.bye = r.text // a close follows, reported by the next read
			}
		default:
			return nil, w.garbage(op, r)
		}
	}
}

// command builds one command line whose arguments may be literals.
type command struct {
	chunks [][]byte
	cur    []byte
}

func newCommand(tag, verb string) *command {
	return &command{cur: []byte(tag + " " + verb)}
}

// astring appends s as a quoted string or, if it holds CR, LF or 8-bit
// bytes, as a synchronizing literal (RFC 3501 §4.3, §9 "quoted"). NUL cannot
// be sent at all.
func (c *command) astring(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	if needsLiteral(s) {
		c.cur = append(c.cur, " {"...)
		c.cur = strconv.AppendInt(c.cur, int64(len(s)), 10)
		c.cur = append(c.cur, "}\r\n"...)
		c.chunks = append(c.chunks, c.cur)
		c.cur = []byte(s)
		return nil
	}
	c.cur = append(c.cur, ' ')
	c.cur = appendQuoted(c.cur, s)
	return nil
}

// done ends the command with CRLF and returns its chunks.
func (c *command) done() [][]byte {
	c.cur = append(c.cur, "\r\n"...)
	return append(c.chunks, c.cur)
}

func needsLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b == '\r' || b == '\n' || b >= 0x80 {
			return true
		}
	}
	return false
}

// appendQuoted appends s as an IMAP quoted string: `"` and `\` escaped.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
