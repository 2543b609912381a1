package dovecotauth

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// maxLine bounds a line from the server. The protocol expects lines to fit
// in 16 KiB; userdb replies with many extra fields may be longer.
const maxLine = 64 << 10

// errProtocol marks a reply the client does not understand: the connection
// is closed and the caller sees directory.ErrUnavailable.
var errProtocol = errors.New("dovecot auth protocol error")

// conn is one connection to an auth socket, used by one request at a time.
type conn struct {
	net.Conn
	r       *bufio.Reader
	timeout time.Duration
	nextID  uint32
}

func newConn(c net.Conn, timeout time.Duration) *conn {
	return &conn{Conn: c, r: bufio.NewReaderSize(c, maxLine), timeout: timeout}
}

// id returns a new request ID (a connection-specific 32-bit number, never
// zero).
func (c *conn) id() string {
	c.nextID++
	return fmt.Sprint(c.nextID)
}

// deadline bounds the next exchange by the timeout.
func (c *conn) deadline() { c.SetDeadline(time.Now().Add(c.timeout)) }

// send writes one line of tab-separated fields (each already escaped).
func (c *conn) send(fields ...string) error {
	if _, err := c.Write([]byte(strings.Join(fields, "\t") + "\n")); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readLine reads one line and splits it into unescaped fields.
func (c *conn) readLine() ([]string, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: a line longer than %d bytes", errProtocol, maxLine)
	}
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	fields := strings.Split(strings.TrimSuffix(string(line[:len(line)-1]), "\r"), "\t")
	for i, f := range fields {
		fields[i] = unescape(f)
	}
	return fields, nil
}

// escape applies Dovecot's tab-escaping (\001 is the escape character) to a
// value sent to the server.
func escape(s string) string {
	if !strings.ContainsAny(s, "\x00\x01\t\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 0:
			b.WriteString("\x010")
		case 1:
			b.WriteString("\x011")
		case '\t':
			b.WriteString("\x01t")
		case '\r':
			b.WriteString("\x01r")
		case '\n':
			b.WriteString("\x01n")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// unescape reverses escape; \001 before any other character writes that
// character.
func unescape(s string) string {
	if !strings.Contains(s, "\x01") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != 1 || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '0':
			b.WriteByte(0)
		case '1':
			b.WriteByte(1)
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// params holds a reply's optional parameters: name=value pairs and
// booleans (name without a value, stored as ""). Unknown ones are kept and
// ignored by the caller, as the protocol asks.
type params map[string]string

func parseParams(fields []string) params {
	p := params{}
	for _, f := range fields {
		if f == "" {
			continue
		}
		name, value, _ := strings.Cut(f, "=")
		if _, dup := p[name]; !dup {
			p[name] = value
		}
	}
	return p
}

func (p params) has(name string) bool { _, ok := p[name]; return ok }

// values returns the parameter, its name compared case-insensitively, as
// the value list of a directory.AttrRule (nil when absent).
func (p params) values(name string) []string {
	if v, ok := p[name]; ok {
		return []string{v}
	}
	for k, v := range p {
		if strings.EqualFold(k, name) {
			return []string{v}
		}
	}
	return nil
}
