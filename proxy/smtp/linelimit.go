package smtp

import (
	"bufio"
	"bytes"
	"net/textproto"
	"reflect"

	gosmtp "github.com/emersion/go-smtp"
)

// go-smtp enforces Server.MaxLineLength in the reader under its buffered
// connection reader (lineLimitReader), which looks at every byte in a Go
// loop, the body of a DATA message included: with dataBody's chunked
// decoding that loop was about half of a relay's CPU. go-smtp switches it
// off for BDAT chunks (LineLimit 0); dataBody switches it off for a DATA
// body too and enforces the same limit itself with bytes.IndexByte, then
// switches it back on. go-smtp exposes neither, so takeLineLimit finds them
// by reflection in the *gosmtp.Conn, with the checks newDataBody makes, and
// leaves go-smtp's check on when anything looks different
// (TestDataBodyMatchesGoSMTP fails then).
//
// lineLimitReader counts the bytes of each read from the connection since
// the last LF (the LF counting as the first byte of its line), across
// commands and bodies, and fails a read that takes a line past the limit:
// the bytes of that read never reach the buffered reader, and every later
// read fails too (ErrTooLongLine), so the connection ends with "500 5.4.0
// Too long line". dataBody reads from the buffered reader one connection
// read at a time (dataBody.fill) and checks each read whole with scan, so a
// body fails exactly where it failed with go-smtp's check on, and Done
// leaves go-smtp's reader failing as it would have.

// lineLimit is go-smtp's line limit of one connection while dataBody
// enforces it.
type lineLimit struct {
	limit   *int          // lineLimitReader.LineLimit: 0 while dataBody checks
	count   *int          // lineLimitReader.curLineLength
	max     int           // the limit
	n       int           // the count as lineLimitReader would have it
	readErr reflect.Value // the buffered reader's pending read error (bufio.Reader.err)
}

// takeLineLimit switches off go-smtp's line check on c, whose buffered
// reader is br, and returns the limit for dataBody to enforce; nil when c
// has no line limit or does not look as expected (go-smtp then checks).
func takeLineLimit(c *gosmtp.Conn, br *bufio.Reader) *lineLimit {
	v := reflect.ValueOf(c)
	if c == nil || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	text, llr := v.Elem().FieldByName("text"), v.Elem().FieldByName("lineLimitReader")
	if !text.IsValid() || text.Type() != reflect.TypeFor[*textproto.Conn]() || text.IsNil() ||
		(*textproto.Conn)(text.UnsafePointer()).R != br ||
		!llr.IsValid() || llr.Kind() != reflect.Pointer || llr.IsNil() {
		return nil
	}
	e := llr.Elem()
	if t := e.Type(); t.PkgPath() != "github.com/emersion/go-smtp" || t.Name() != "lineLimitReader" || t.Kind() != reflect.Struct {
		return nil
	}
	limit, count := e.FieldByName("LineLimit"), e.FieldByName("curLineLength")
	readErr := reflect.ValueOf(br).Elem().FieldByName("err")
	if !limit.IsValid() || limit.Type() != reflect.TypeFor[int]() ||
		!count.IsValid() || count.Type() != reflect.TypeFor[int]() ||
		!readErr.IsValid() || readErr.Type() != reflect.TypeFor[error]() {
		return nil
	}
	l := &lineLimit{
		limit:   (*int)(limit.Addr().UnsafePointer()),
		count:   (*int)(count.Addr().UnsafePointer()),
		readErr: readErr,
	}
	l.max, l.n = *l.limit, *l.count
	if l.max <= 0 || l.n > l.max {
		return nil // no limit, or go-smtp's reader has failed already
	}
	*l.limit = 0
	return l
}

// passes counts the bytes the last read from the connection added to br
// (those after the first had) and reports whether go-smtp's check would
// have let that read through.
func (l *lineLimit) passes(br *bufio.Reader, had int) bool {
	if !l.readErr.IsNil() {
		// lineLimitReader passes the bytes of a failed read unchecked
		// (crypto/tls returns the last bytes with io.EOF).
		return true
	}
	in, _ := br.Peek(br.Buffered())
	return l.scan(in[had:])
}

// scan counts p as lineLimitReader does and reports whether every line
// stayed within the limit.
func (l *lineLimit) scan(p []byte) bool {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p)
		}
		if l.n+i > l.max {
			l.n = l.max + 1
			return false
		}
		if i == len(p) {
			l.n += i
			return true
		}
		l.n, p = 1, p[i+1:]
	}
}

// restore switches go-smtp's check back on with the count it would have.
func (l *lineLimit) restore() {
	*l.count, *l.limit = l.n, l.max
}
