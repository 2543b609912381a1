package smtp

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// TestLineEndReader: the body filter passes CRLF-only text unchanged and
// stops before the first bare CR or LF, whatever the read boundaries (each
// byte in a read of its own, or everything in one), so that no byte of a
// refused line end is relayed.
func TestLineEndReader(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
		bare           bool
	}{
		{"CRLF only", "a\r\nb\r\n\r\n.leading\r\n", "a\r\nb\r\n\r\n.leading\r\n", false},
		{"empty", "", "", false},
		{"bare CR mid-line", "ab\rcd\r\n", "ab", true},
		{"CR.CR", "x\r.\ry\r\n", "x", true},
		{"bare LF", "ab\r\ncd\nef\r\n", "ab\r\ncd", true},
		{"LF first", "\nx", "", true},
		{"CR CR LF", "a\r\r\n", "a", true},
		{"CR last", "a\r\nb\r", "a\r\nb", true},
		{"NUL is no line end", "a\x00b\r\n", "a\x00b\r\n", false},
	} {
		for _, split := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+", "+split, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if split == "byte by byte" {
					r = iotest.OneByteReader(r)
				}
				got, err := io.ReadAll(&lineEndReader{r: r})
				if string(got) != tt.want {
					t.Errorf("read %q, want %q", got, tt.want)
				}
				if bare := errors.Is(err, errBareLineEnd); bare != tt.bare || (!bare && err != nil) {
					t.Errorf("error %v, want bare line end: %v", err, tt.bare)
				}
			})
		}
	}
	t.Run("other errors pass", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := io.ReadAll(&lineEndReader{r: iotest.ErrReader(boom)})
		if !errors.Is(err, boom) {
			t.Errorf("error %v, want %v", err, boom)
		}
	})
}

// TestBareLineEndInBDAT: a BDAT message (RFC 3030 CHUNKING, which go-smtp
// offers) goes upstream as DATA, so a bare CR or LF in it is refused too.
func TestBareLineEndInBDAT(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := &badConn{textConn: dialText(t, e.addr)}
	c.run(steps(ehlo, authOK))
	c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	c.transactWant("RCPT TO:<bob@example.net>", 250, "")
	body := "Subject: x\r\n\r\na\rb\r\n"
	c.sendRaw("BDAT " + strconv.Itoa(len(body)) + " LAST\r\n" + body)
	c.expectLine(replyBareLineEnd)
	c.transactWant("NOOP", 250, "")
	if msgs := e.sink.messages(); len(msgs) != 0 {
		t.Errorf("the upstream accepted %d messages", len(msgs))
	}
	for i, w := range e.sink.wire() {
		if hasBareLineEnd(w) {
			t.Errorf("upstream connection %d received %q", i, w)
		}
	}
}
