package smtp

import (
	"bufio"
	"bytes"
	"io"
	"reflect"

	gosmtp "github.com/emersion/go-smtp"
)

// go-smtp hands a DATA body over as a reader that decodes it a byte at a
// time (its dataReader, net/textproto's DotReader without the CRLF to LF
// rewrite), which cost more than half of a relay's CPU. dataBody reads the
// same body from the same buffered connection reader in chunks: it
// continues go-smtp's state machine where go-smtp starts it, emits the same
// bytes and errors as lineEndReader over go-smtp's reader would, and stops
// before the final ".\r\n", which go-smtp's reader then reads itself as
// the end of the data. The two readers never disagree on where the message
// ends (the fuzz test FuzzDataBody holds them to it), so neither can be
// made to take the rest of a message for commands (SMTP smuggling).
//
// go-smtp (v0.25.1, and v0.26.0 alike) exposes neither that buffered reader
// nor a faster body reader, so newDataBody finds it by reflection in the
// reader Data gets, and only when every field it relies on is there with
// the expected type and go-smtp's reader has not read yet; otherwise the
// body is read through go-smtp's reader as before (TestDataBodyMatchesGoSMTP
// fails then, so that an upgrade does not go slow unnoticed).

// go-smtp's dataReader states (data.go), in its order.
const (
	stateBeginLine = iota // at the start of a line: the initial state
	stateDot              // read "." at the start of a line
	stateDotCR            // read ".\r" at the start of a line
	stateCR               // read "\r"
	stateData             // inside a line
)

// dataBody reads a DATA body, dot-decoded and with line ends checked as
// lineEndReader does, from go-smtp's connection reader br, and enforces
// go-smtp's line limit (see linelimit.go). Read needs room for 2 bytes.
// Done must be called after the last Read.
type dataBody struct {
	br     *bufio.Reader
	before func() // before a read that may block (extends the deadline)
	state  int
	heldCR bool  // an emitted CR not returned yet: it must be followed by LF
	left   int64 // emitted bytes allowed; a message reaching it is too large
	limit  bool  // left applies
	drain  bool  // Discard: decode without emitting or checking
	err    error // sticky: io.EOF at the end marker, or what failed

	lines   *lineLimit // go-smtp's line limit, enforced here; nil: go-smtp's reader checks
	refused int        // bytes at the end of br that go-smtp's check refused (see fill)
}

// newDataBody returns a dataBody for r when r is go-smtp's DATA reader
// before its first read, and false otherwise (a BDAT body, or a go-smtp
// whose reader looks different: then r is read as it is). c is r's
// connection.
func newDataBody(r io.Reader, c *gosmtp.Conn, before func()) (*dataBody, bool) {
	v := reflect.ValueOf(r)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, false
	}
	e := v.Elem()
	if t := e.Type(); t.PkgPath() != "github.com/emersion/go-smtp" || t.Name() != "dataReader" || t.Kind() != reflect.Struct {
		return nil, false
	}
	br, state := e.FieldByName("r"), e.FieldByName("state")
	limited, n := e.FieldByName("limited"), e.FieldByName("n")
	if !br.IsValid() || br.Type() != reflect.TypeFor[*bufio.Reader]() || br.IsNil() ||
		!state.IsValid() || !state.CanInt() || state.Int() != stateBeginLine ||
		!limited.IsValid() || limited.Kind() != reflect.Bool || !n.IsValid() || !n.CanInt() {
		return nil, false
	}
	b := &dataBody{
		br:     (*bufio.Reader)(br.UnsafePointer()),
		before: before,
		left:   n.Int(),
		limit:  limited.Bool(),
	}
	b.lines = takeLineLimit(c, b.br)
	return b, true
}

// Read fills p with the decoded body, blocking until p is nearly full, the
// body ended (io.EOF) or a read failed. Errors are go-smtp's
// (ErrDataTooLarge, ErrTooLongLine, io.ErrUnexpectedEOF, the connection's)
// and errBareLineEnd.
func (b *dataBody) Read(p []byte) (int, error) {
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	n := 0
	for b.err == nil && n < len(p)-1 {
		n = b.decode(p, n)
	}
	if n > 0 {
		return n, nil // the error, if any, comes with the next Read
	}
	return 0, b.err
}

// decode decodes what br holds into p[n:], after a read when it holds
// nothing, and returns the new n.
func (b *dataBody) decode(p []byte, n int) int {
	if err := b.fill(1); err != nil {
		b.fail(err)
		return n
	}
	in, _ := b.br.Peek(b.buffered())
	i := 0
	for i < len(in) && n < len(p)-1 && b.err == nil {
		if b.state == stateData && !b.heldCR {
			// Bytes other than CR and LF change nothing in a line.
			k := bytes.IndexByte(in[i:], '\r')
			if k < 0 {
				k = len(in) - i
			}
			if j := bytes.IndexByte(in[i:i+k], '\n'); j >= 0 {
				k = j
			}
			if b.drain && k > 0 {
				i += k
				continue
			}
			k = min(k, len(p)-1-n)
			if b.limit {
				k = int(min(int64(k), b.left))
			}
			if k > 0 {
				copy(p[n:], in[i:i+k])
				n, i = n+k, i+k
				b.count(k)
				continue
			}
		}
		if b.state == stateBeginLine && in[i] == '.' && (len(in)-i < 2 || in[i+1] == '\r') {
			// "." or ".\r" starting a line: the end marker if "\n" follows.
			if len(in)-i < 3 {
				break // read on below
			}
			if in[i+2] == '\n' {
				b.err = io.EOF // the end marker, left for go-smtp's reader
				break
			}
		}
		n = b.step(in[i], p, n)
		i++
	}
	b.br.Discard(i)
	if b.err == nil && b.state == stateBeginLine && i < len(in) && in[i] == '.' && n < len(p)-1 {
		// A line starts with "." at the end of what br holds: read on
		// until it shows whether that is the end marker.
		if err := b.fill(3); err != nil {
			b.fail(err)
		}
	}
	return n
}

// buffered is how many bytes br holds that go-smtp's reader would hold.
func (b *dataBody) buffered() int {
	return b.br.Buffered() - b.refused
}

// fill reads from the client until br holds n bytes, one read at a time
// (as go-smtp's reader reads) so that each read can be checked whole
// against the line limit. A read go-smtp's check would have refused stays
// in br as refused bytes, never decoded: the reads fail from then on with
// go-smtp's ErrTooLongLine.
func (b *dataBody) fill(n int) error {
	for b.buffered() < n {
		if b.refused > 0 {
			return gosmtp.ErrTooLongLine
		}
		had := b.br.Buffered()
		b.before()
		_, err := b.br.Peek(had + 1) // one read (bufio.Reader.fill)
		if b.lines != nil && !b.lines.passes(b.br, had) {
			b.refused = b.br.Buffered() - had
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// step runs one byte c through go-smtp's state machine (data.go), then
// what it emits through lineEndReader's check, appending to p[n:].
func (b *dataBody) step(c byte, p []byte, n int) int {
	switch b.state {
	case stateBeginLine:
		if c == '.' {
			b.state = stateDot
			return n
		}
		if c == '\r' {
			b.state = stateCR
			break
		}
		b.state = stateData
	case stateDot:
		if c == '\r' {
			b.state = stateDotCR
			return n
		}
		b.state = stateData
	case stateDotCR:
		// c == '\n' is the end marker, found before step.
		b.state = stateData
	case stateCR:
		if c == '\n' {
			b.state = stateBeginLine
			break
		}
		b.state = stateData
	case stateData:
		if c == '\r' {
			b.state = stateCR
		}
	}
	return b.emit(c, p, n)
}

// emit checks the emitted byte c as lineEndReader does: a CR is held until
// an LF follows it.
func (b *dataBody) emit(c byte, p []byte, n int) int {
	switch {
	case b.drain:
		return n
	case b.heldCR && c != '\n', !b.heldCR && c == '\n':
		b.err = errBareLineEnd
		return n
	case b.heldCR:
		p[n], p[n+1] = '\r', '\n'
		n += 2
		b.heldCR = false
	case c == '\r':
		b.heldCR = true
	default:
		p[n] = c
		n++
	}
	b.count(1)
	return n
}

// count takes k emitted bytes off the size limit. Like go-smtp's reader,
// a message is too large once it reached the limit, end marker or not.
func (b *dataBody) count(k int) {
	if !b.limit {
		return
	}
	b.left -= int64(k)
	if b.left <= 0 && b.err == nil {
		b.err = gosmtp.ErrDataTooLarge
	}
}

// fail records a read error: the end of the connection inside the body is
// io.ErrUnexpectedEOF, as with go-smtp.
func (b *dataBody) fail(err error) {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
}

// Done reads the rest of the body (Discard) and switches go-smtp's line
// check back on, as go-smtp's reader reads on after Data returns.
func (b *dataBody) Done() {
	b.Discard()
	if b.lines == nil {
		return
	}
	if b.refused > 0 {
		// go-smtp's reader never got the refused read, and would read and
		// drop what is left before it (at most ".\r": a body stops only
		// at a read that fails or at the end marker, see decode) before it
		// failed: now it fails at once, and so does every later read.
		b.br.Discard(b.br.Buffered())
	}
	b.lines.restore()
}

// Discard reads the rest of the body as go-smtp would, up to the end marker
// (which it leaves for go-smtp's reader), so that go-smtp's reader, which
// reads on after Data returns, starts at the end marker and not inside the
// message. It stops at a read error.
func (b *dataBody) Discard() {
	if b.err == io.EOF || (b.err != nil && b.err != errBareLineEnd && b.err != gosmtp.ErrDataTooLarge) {
		return // at the end marker, or the connection failed
	}
	b.err, b.drain, b.heldCR = nil, true, false
	var none [2]byte
	for b.err == nil {
		b.decode(none[:], 0)
	}
}
