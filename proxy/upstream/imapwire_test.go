package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		line                          string
		tag, status, code, args, text string
	}{
		{"* OK [CAPABILITY IMAP4rev1 SASL-IR] Dovecot ready.", "*", "OK", "CAPABILITY", "IMAP4rev1 SASL-IR", "Dovecot ready."},
		{"p1 no [authorizationfailed] Authorization failed", "p1", "NO", "AUTHORIZATIONFAILED", "", "Authorization failed"},
		{"p2 BAD Error in IMAP command", "p2", "BAD", "", "", "Error in IMAP command"},
		{"+ ", "+", "", "", "", ""},
		{"+", "+", "", "", "", ""},
		{"* BYE", "*", "BYE", "", "", ""},
		{"* OK [ALERT unterminated", "*", "OK", "", "", "[ALERT unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r := parseResponse([]byte(tt.line + "\r\n"))
			if r.tag != tt.tag || r.status != tt.status || r.code != tt.code || r.args != tt.args || r.text != tt.text {
				t.Errorf("parse = tag %q status %q code %q args %q text %q", r.tag, r.status, r.code, r.args, r.text)
			}
		})
	}
}

func TestCommandArguments(t *testing.T) {
	tests := []struct {
		arg  string
		want []string // chunks
	}{
		{"alice", []string{`t LOGIN "alice"` + "\r\n"}},
		{`a"b\c`, []string{`t LOGIN "a\"b\\c"` + "\r\n"}},
		{"", []string{`t LOGIN ""` + "\r\n"}},
		{"é", []string{"t LOGIN {2}\r\n", "é\r\n"}},
		{"a\nb", []string{"t LOGIN {3}\r\n", "a\nb\r\n"}},
	}
	for _, tt := range tests {
		c := newCommand("t", "LOGIN")
		if err := c.astring(tt.arg); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range c.done() {
			got = append(got, string(ch))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("astring(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
	if err := newCommand("t", "LOGIN").astring("a\x00b"); err == nil {
		t.Errorf("astring accepted NUL")
	}
}

// FuzzRead feeds arbitrary upstream bytes to the response reader: it must
// not panic, must stay within maxResponse, and must return raw bytes that
// are a prefix of its input.
func FuzzRead(f *testing.F) {
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1] hi\r\np1 OK done\r\n"))
	f.Add([]byte("* ID (\"name\" {7}\r\nDovecot)\r\n"))
	f.Add([]byte("* X {99999999999999999999}\r\n"))
	f.Add([]byte("+ \r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &wire{link: &link{ctx: context.Background()}, br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		consumed := 0
		for range 8 {
			r, err := w.read("fuzz")
			if err != nil {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("error %v does not wrap ErrUnavailable", err)
				}
				return
			}
			if len(r.raw) > maxResponse {
				t.Fatalf("response of %d bytes", len(r.raw))
			}
			if !bytes.HasPrefix(data[consumed:], r.raw) {
				t.Fatalf("raw %q is not the next input", r.raw)
			}
			consumed += len(r.raw)
			r.capabilities()
		}
	})
}
