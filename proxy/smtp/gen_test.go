package smtp

// Test message generation and hashing.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"strings"
)

type hasher struct{ h hash.Hash }

func newHasher() *hasher                      { return &hasher{sha256.New()} }
func (h *hasher) Write(p []byte) (int, error) { return h.h.Write(p) }
func (h *hasher) sum() (s [32]byte)           { copy(s[:], h.h.Sum(nil)); return s }

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// genMessage returns a message of n (> 100) bytes from messageReader.
func genMessage(n int) []byte {
	var b bytes.Buffer
	b.Grow(n)
	r := &messageReader{left: int64(n)}
	io.Copy(&b, r)
	return b.Bytes()
}

// messageReader generates a message of left (> 100) bytes on the fly: a
// header, then CRLF lines of 78 bytes, every 7th starting with a dot.
type messageReader struct {
	left int64
	line int
	pos  int
	cur  []byte
}

func (m *messageReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && m.left > 0 {
		if m.pos == len(m.cur) {
			m.cur = m.nextLine()
			m.pos = 0
		}
		k := copy(p[n:], m.cur[m.pos:])
		if int64(k) > m.left {
			k = int(m.left)
		}
		m.pos += k
		n += k
		m.left -= int64(k)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (m *messageReader) nextLine() []byte {
	m.line++
	if m.line == 1 {
		return []byte("Subject: generated\r\n\r\n")
	}
	if m.left <= 80 { // the last line: the message ends on a line break
		return []byte(strings.Repeat("z", int(m.left)-2) + "\r\n")
	}
	l := []byte(strings.Repeat(string(rune('a'+m.line%26)), 76) + "\r\n")
	if m.line%7 == 0 {
		l[0] = '.'
	}
	return l
}
