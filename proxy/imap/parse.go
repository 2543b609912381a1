package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// command is one client command being parsed (RFC 3501 §9 grammar). A
// command is one line, or several line segments joined by literals.
type command struct {
	c    *conn
	tag  string // "" until parsed
	name string // upper case
	line []byte // unparsed rest of the current segment, CRLF stripped; valid until the next read
}

var errLineTooLong = &respError{status: "BAD", code: "TOOBIG", text: "Line too long", untagged: true, close: true}

// recordTypeHandshake is the first byte of a TLS ClientHello (RFC 8446
// §5.1). It is a control character, so no IMAP command starts with it.
const recordTypeHandshake = 0x16

// errTLSOnPlain ends a plain connection whose client starts a TLS handshake
// (a client set up for port 993 talking to 143): its bytes are no command,
// and it cannot read our reply anyway.
var errTLSOnPlain = &respError{status: "BYE", text: "TLS handshake on a plain connection: use implicit TLS or STARTTLS",
	untagged: true, close: true}

// readLine reads one line under the deadline of the command being read
// (armed by readCommand) and the MaxLine limit (the reader's buffer size).
// The slice is valid until the next read. Bare LF is accepted as a line
// end.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	if err != nil {
		return nil, fmt.Errorf("read command: %w", err)
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}

// readCommand arms the read deadline of a new command and reads its first
// segment, then parses its tag and name. The returned command is never nil,
// even with an error.
//
// The deadline is armed here only: the whole command (its literals, the
// segments after them and its SASL responses) must arrive within one
// PreauthTimeout, so an idle or trickling client is closed after one
// PreauthTimeout, never two.
func (c *conn) readCommand() (*command, error) {
	cmd := &command{c: c}
	if err := c.SetReadDeadline(); err != nil {
		return cmd, err
	}
	if !c.tls {
		b, err := c.r.Peek(1)
		if err != nil {
			// Peek hands the error over once: reading again would wait
			// for a second deadline.
			return cmd, fmt.Errorf("read command: %w", err)
		}
		if b[0] == recordTypeHandshake {
			c.log.Info("imap client started TLS on a plain connection")
			return cmd, errTLSOnPlain
		}
	}
	line, err := c.readLine()
	if err != nil {
		return cmd, err
	}
	cmd.line = line
	if len(line) == 0 {
		return cmd, &respError{status: "BAD", text: "Empty command line", untagged: true}
	}
	// tag = 1*<any ASTRING-CHAR except "+">
	n := 0
	for n < len(line) && astringChar(line[n]) && line[n] != '+' {
		n++
	}
	if n == 0 || (n < len(line) && line[n] != ' ') {
		return cmd, &respError{status: "BAD", text: "Invalid tag", untagged: true}
	}
	cmd.tag = string(line[:n])
	if n == len(line) {
		cmd.line = nil
		return cmd, bad("Missing command")
	}
	cmd.line = line[n+1:]
	if bytes.IndexByte(cmd.line, 0) >= 0 {
		return cmd, bad("NUL byte in command")
	}
	name, err := cmd.atom()
	if err != nil {
		return cmd, bad("Missing command")
	}
	cmd.name = strings.ToUpper(name)
	return cmd, nil
}

// atomChar reports whether b may appear in an atom (RFC 3501 §9 ATOM-CHAR).
// Bytes above 0x7f are accepted, as most servers do, for UTF-8 usernames.
func atomChar(b byte) bool {
	if b <= ' ' || b == 0x7f {
		return false
	}
	return !strings.ContainsRune(`(){%*"\]`, rune(b))
}

// astringChar is ATOM-CHAR or resp-specials ("]").
func astringChar(b byte) bool { return atomChar(b) || b == ']' }

// sp consumes one space.
func (cmd *command) sp() error {
	if len(cmd.line) == 0 || cmd.line[0] != ' ' {
		return bad("Missing argument")
	}
	cmd.line = cmd.line[1:]
	return nil
}

// end checks that the command has no more arguments.
func (cmd *command) end() error {
	if len(cmd.line) != 0 {
		return bad("Unexpected arguments")
	}
	return nil
}

// atom parses 1*ATOM-CHAR.
func (cmd *command) atom() (string, error) {
	n := 0
	for n < len(cmd.line) && atomChar(cmd.line[n]) {
		n++
	}
	if n == 0 {
		return "", bad("Expected an atom")
	}
	s := string(cmd.line[:n])
	cmd.line = cmd.line[n:]
	return s, nil
}

// astring parses an atom-like string, a quoted string or a literal.
func (cmd *command) astring() (string, error) { return cmd.astringOf(astringChar) }

// loginString is astring that also takes the list wildcards "%" and "*",
// which ATOM-CHAR excludes (RFC 3501 §9), in LOGIN's arguments, as Dovecot
// does: "LOGIN alice*proxy secret" (a master login typed by hand) is a
// login the Authenticator refuses, not a BAD.
func (cmd *command) loginString() (string, error) {
	return cmd.astringOf(func(b byte) bool { return astringChar(b) || b == '%' || b == '*' })
}

func (cmd *command) astringOf(char func(byte) bool) (string, error) {
	if len(cmd.line) > 0 && (cmd.line[0] == '"' || cmd.line[0] == '{') {
		return cmd.string()
	}
	n := 0
	for n < len(cmd.line) && char(cmd.line[n]) {
		n++
	}
	if n == 0 {
		return "", bad("Expected a string")
	}
	s := string(cmd.line[:n])
	cmd.line = cmd.line[n:]
	return s, nil
}

// nstring parses NIL or a string; isNil reports NIL.
func (cmd *command) nstring() (s string, isNil bool, err error) {
	if cmd.nilToken() {
		return "", true, nil
	}
	s, err = cmd.string()
	return s, false, err
}

// nilToken consumes NIL (case-insensitive) and reports whether it was
// there.
func (cmd *command) nilToken() bool {
	l := cmd.line
	if len(l) < 3 || !strings.EqualFold(string(l[:3]), "NIL") || (len(l) > 3 && atomChar(l[3])) {
		return false
	}
	cmd.line = l[3:]
	return true
}

// string parses a quoted string or a literal (RFC 3501 §4.3).
func (cmd *command) string() (string, error) {
	if len(cmd.line) == 0 {
		return "", bad("Expected a string")
	}
	switch cmd.line[0] {
	case '"':
		return cmd.quoted()
	case '{':
		return cmd.literal()
	}
	return "", bad("Expected a string")
}

// quoted parses DQUOTE *QUOTED-CHAR DQUOTE, where only \" and \\ are
// escapes.
func (cmd *command) quoted() (string, error) {
	var b strings.Builder
	for i := 1; i < len(cmd.line); i++ {
		switch ch := cmd.line[i]; ch {
		case '"':
			cmd.line = cmd.line[i+1:]
			return b.String(), nil
		case '\\':
			i++
			if i == len(cmd.line) || (cmd.line[i] != '"' && cmd.line[i] != '\\') {
				return "", bad("Invalid escape in quoted string")
			}
			b.WriteByte(cmd.line[i])
		default:
			b.WriteByte(ch)
		}
	}
	return "", bad("Unterminated quoted string")
}

// parseLiteral parses "{" number ["+"] "}" at the end of line (RFC 3501
// §4.3, RFC 7888 LITERAL+). ok is false if line does not end with one.
func parseLiteral(line []byte) (n int64, nonSync, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false
	}
	spec := line[open+1 : len(line)-1]
	if s, found := bytes.CutSuffix(spec, []byte{'+'}); found {
		spec, nonSync = s, true
	}
	if len(spec) == 0 || len(spec) > 10 || bytes.ContainsFunc(spec, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false, false
	}
	n, err := strconv.ParseInt(string(spec), 10, 64)
	if err != nil || n > 4294967295 {
		return 0, false, false
	}
	return n, nonSync, true
}

// literal reads a literal whose "{n}" or "{n+}" ends the current segment,
// then the next segment. A synchronising literal gets a continuation
// request first (RFC 3501 §7.5); a non-synchronising one does not (RFC
// 7888).
func (cmd *command) literal() (string, error) {
	n, nonSync, ok := parseLiteral(cmd.line)
	if !ok || cmd.line[0] != '{' || bytes.IndexByte(cmd.line[1:], '{') >= 0 {
		return "", bad("Invalid literal")
	}
	cmd.line = nil
	if n > int64(cmd.c.srv.limits().MaxLiteral) {
		// The client sends a non-synchronising literal anyway: the stream
		// cannot be resynchronised.
		return "", &respError{status: "BAD", code: "TOOBIG", text: "Literal too large", close: nonSync}
	}
	if !nonSync {
		if err := cmd.c.Write("+ Ready for literal data"); err != nil {
			return "", err
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(cmd.c.r, buf); err != nil {
		return "", fmt.Errorf("read literal: %w", err)
	}
	line, err := cmd.c.readLine()
	if err != nil {
		return "", err
	}
	cmd.line = line
	if bytes.IndexByte(buf, 0) >= 0 || bytes.IndexByte(line, 0) >= 0 {
		return "", bad("NUL byte in command")
	}
	return string(buf), nil
}

// skip consumes the rest of a refused command: the current segment and
// any non-synchronising literals with the segments that follow them. A
// synchronising literal is not read: the client waits for a continuation
// that never comes and sees the tagged reply instead (RFC 3501 §7.5).
func (cmd *command) skip() error {
	for {
		n, nonSync, ok := parseLiteral(cmd.line)
		cmd.line = nil
		if !ok || !nonSync {
			return nil
		}
		if n > int64(cmd.c.srv.limits().MaxLiteral) {
			return &respError{status: "BAD", code: "TOOBIG", text: "Literal too large", close: true}
		}
		if _, err := cmd.c.r.Discard(int(n)); err != nil {
			return fmt.Errorf("skip literal: %w", err)
		}
		line, err := cmd.c.readLine()
		if err != nil {
			return err
		}
		cmd.line = line
	}
}
