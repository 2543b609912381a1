package smtp

import (
	"io"

	gosmtp "github.com/emersion/go-smtp"
)

// errBareLineEnd refuses a message holding a CR not followed by LF or an
// LF not preceded by CR (RFC 5321 §2.3.8: lines end with CRLF). Servers
// read such bytes differently, which is what SMTP smuggling exploits (a
// "<CR>.<CR>" one upstream takes for the end of the data); passgate
// refuses the message, as Postfix's smtpd_forbid_bare_newline does, rather
// than guess what the client meant.
var errBareLineEnd = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
	Message: "Message refused: bare CR or LF in it, lines must end with CRLF"}

// lineEndReader passes a message body through until its first bare CR or
// LF, where it fails with errBareLineEnd: the bytes before it are
// returned, the offending one never. A CR that ends a read is held back
// until the next byte shows whether an LF follows. Read needs room for 2
// bytes.
type lineEndReader struct {
	r      io.Reader
	heldCR bool  // a CR was read and not returned yet
	err    error // sticky errBareLineEnd
}

func (l *lineEndReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	start := 0
	if l.heldCR {
		p[0], start = '\r', 1
	}
	n, err := l.r.Read(p[start:])
	b := p[:start+n]
	l.heldCR = false
	for i, ch := range b {
		switch {
		case ch == '\n' && (i == 0 || b[i-1] != '\r'):
			// i == 0: the byte before was returned by an earlier Read, and
			// was no CR (a CR at the end of a read is held back).
			return i, l.bare()
		case ch == '\r' && i+1 < len(b) && b[i+1] != '\n':
			return i, l.bare()
		case ch == '\r' && i+1 == len(b):
			switch err {
			case nil:
				l.heldCR = true
				return i, nil
			case io.EOF:
				return i, l.bare()
			}
			return i, err
		}
	}
	return len(b), err
}

func (l *lineEndReader) bare() error {
	l.err = errBareLineEnd
	return l.err
}
