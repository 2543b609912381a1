package imap

import (
	"strings"
	"testing"
)

func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		name string
		send string
		want []string // replies, in order
	}{
		{"SELECT before login", "a SELECT INBOX\r\n", []string{"a BAD Log in first"}},
		{"UID FETCH before login", "a UID FETCH 1:* FLAGS\r\n", []string{"a BAD Log in first"}},
		{"unknown command", "a FROBNICATE\r\n", []string{"a BAD Unknown command"}},
		{"empty line", "\r\n", []string{"* BAD Empty command line"}},
		{"tag only", "a\r\n", []string{"a BAD Missing command"}},
		{"invalid tag", "+ NOOP\r\n", []string{"* BAD Invalid tag"}},
		{"tag with a quote", "a\"b NOOP\r\n", []string{"* BAD Invalid tag"}},
		{"NUL byte", "a NO\x00OP\r\n", []string{"a BAD NUL byte in command"}},
		{"NUL byte in a literal", "a LOGIN {3+}\r\na\x00b x\r\n", []string{"a BAD NUL byte in command"}},
		{"unterminated quoted string", "a LOGIN \"alice x\r\n", []string{"a BAD Unterminated quoted string"}},
		{"bad escape", "a LOGIN \"al\\ice\" x\r\n", []string{"a BAD Invalid escape in quoted string"}},
		{"LOGIN with one argument", "a LOGIN alice\r\n", []string{"a BAD Missing argument"}},
		{"LOGIN with three arguments", "a LOGIN alice x y\r\n", []string{"a BAD Unexpected arguments"}},
		{"literal not at the end of the line", "a LOGIN {5} x\r\n", []string{"a BAD Invalid literal"}},
		{"refused command with a non-synchronising literal",
			"a SELECT {5+}\r\nINBOX\r\nb NOOP\r\n", []string{"a BAD Log in first", "b OK NOOP completed"}},
		{"refused command with two literals",
			"a APPEND {5+}\r\nINBOX {3+}\r\nabc\r\nb NOOP\r\n", []string{"a BAD Log in first", "b OK NOOP completed"}},
		{"bare LF line ends", "a NOOP\nb NOOP\n", []string{"a OK NOOP completed", "b OK NOOP completed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext)
			c := e.greeted()
			c.send(tt.send)
			for _, w := range tt.want {
				c.expect(w)
			}
			// Still in sync: the next command is answered.
			c.expectTagged("z", "NOOP", "z OK ")
			if n := len(e.auth.all()); n != 0 {
				t.Errorf("Verify called %d times", n)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name   string
		send   string
		want   string
		closed bool
	}{
		{"line too long", "a NOOP " + strings.Repeat("x", 100) + "\r\n",
			"* BAD [TOOBIG] Line too long", true},
		{"line too long without end", strings.Repeat("x", 200),
			"* BAD [TOOBIG] Line too long", true},
		{"line at the limit", "a CAPABILITY" + strings.Repeat(" ", 64-len("a CAPABILITY\r\n")) + "\r\n",
			"a BAD Unexpected arguments", false},
		{"synchronising literal too large", "a LOGIN {33}\r\n",
			"a BAD [TOOBIG] Literal too large", false},
		{"huge literal is not allocated", "a LOGIN {4294967295}\r\n",
			"a BAD [TOOBIG] Literal too large", false},
		{"non-synchronising literal too large", "a LOGIN {33+}\r\n" + strings.Repeat("x", 33) + "\r\n",
			"a BAD [TOOBIG] Literal too large", true},
		{"literal at the limit", "a LOGIN {32+}\r\n" + strings.Repeat("x", 32) + " y\r\n",
			"a NO [AUTHENTICATIONFAILED] Invalid credentials", false},
		{"skipped literal too large", "a SELECT {33+}\r\n",
			"a BAD [TOOBIG] Literal too large", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext, func(s *Server) { s.Limits.MaxLine = 64; s.Limits.MaxLiteral = 32 })
			c := e.greeted()
			c.send(tt.send)
			c.expect(tt.want)
			if tt.closed {
				c.expectClosed()
				return
			}
			c.expectTagged("z", "NOOP", "z OK ")
		})
	}
}

func TestID(t *testing.T) {
	tests := []struct {
		name   string
		args   string
		want   string // tagged reply start
		client string // Attempt.Client of a following login
	}{
		{"name and version", `("name" "Thunderbird" "version" "128.1" "os" "Linux")`, "i OK ", "Thunderbird/128.1"},
		{"keys are case-insensitive", `("NAME" "K-9 Mail" "Version" NIL)`, "i OK ", "K-9 Mail"},
		{"NIL", "NIL", "i OK ", ""},
		{"nil lower case", "nil", "i OK ", ""},
		{"empty list", "()", "i OK ", ""},
		{"literal value", "(\"name\" {4+}\r\nmutt)", "i OK ", "mutt"},
		{"control characters dropped", `("name" "evil` + "\x01" + `client")`, "i OK ", "evilclient"},
		{"long value truncated", `("name" "` + strings.Repeat("n", 300) + `")`, "i OK ", strings.Repeat("n", 128)},
		{"missing list", "", "i BAD ", ""},
		{"atom instead of list", "name", "i BAD ", ""},
		{"odd list", `("name")`, "i BAD ", ""},
		{"unclosed list", `("name" "x"`, "i BAD ", ""},
		{"too many fields", "(" + strings.Repeat(`"k" "v" `, 30) + `"k" "v")`, "i BAD ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext)
			c := e.greeted()
			cmd := "ID"
			if tt.args != "" {
				cmd += " " + tt.args
			}
			lines := c.expectTagged("i", cmd, tt.want)
			if tt.want == "i OK " && (len(lines) != 2 || lines[0] != `* ID ("name" "passgate")`) {
				t.Errorf("ID reply %q", lines)
			}
			c.expectTagged("a", "LOGIN alice@example.org nope", "a NO ")
			if got := e.auth.last(t).Client; got != tt.client {
				t.Errorf("Attempt.Client = %q, want %q", got, tt.client)
			}
		})
	}
}
