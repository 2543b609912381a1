package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/passgate/passgate/proxy"
)

// errDone ends a connection without a further reply (QUIT, end of relay).
var errDone = errors.New("pop3: connection done")

// conn is one client connection in the AUTHORIZATION state. Its goroutine
// (serve) owns netConn and r until the relay hands them to proxy.Splice.
type conn struct {
	srv    *Server
	id     string
	remote netip.AddrPort
	log    *slog.Logger
	ctx    context.Context

	r        *bufio.Reader
	tls      bool
	user     string // from USER, for PASS
	failures int
	commands int

	mu          sync.Mutex // guards the fields below (Shutdown/Close use them)
	netConn     net.Conn
	up          net.Conn
	relaying    bool
	interrupted bool
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	c := &conn{
		srv:     s,
		id:      proxy.NewSessionID(),
		remote:  proxy.RemoteAddrPort(nc.RemoteAddr()),
		netConn: nc,
		tls:     implicitTLS,
		r:       bufio.NewReaderSize(nc, s.limits().MaxLine),
	}
	c.log = s.logger().With("session", c.id, "remote", c.remote.String())
	return c
}

// replyError is a command's failure: the -ERR line it earns.
type replyError struct {
	code    string // RFC 2449 §8 / RFC 3206 response code, or ""
	text    string
	close   bool // close after the reply
	failure bool // a failed login: counts towards MaxFailedLogins
}

func (e *replyError) Error() string { return "pop3: -ERR " + e.line() }

func (e *replyError) line() string {
	if e.code != "" {
		return "[" + e.code + "] " + e.text
	}
	return e.text
}

func errf(text string) *replyError { return &replyError{text: text} }

// serve runs the connection: greeting, command loop, relay after login.
func (c *conn) serve(ctx context.Context) {
	var cancel context.CancelFunc
	c.ctx, cancel = context.WithCancel(ctx)
	defer c.Close()
	defer cancel()
	defer c.recoverPanic()
	release, admitted := c.srv.Limits.Conns.Acquire(c.remote.Addr())
	if admitted {
		defer release()
	}
	if tc, ok := c.netConn.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.log.Debug("pop3 tls handshake failed", "err", err)
			return
		}
	}
	if !admitted {
		c.log.Info("pop3 connection refused: too many connections")
		c.write("-ERR [SYS/TEMP] Too many connections")
		return
	}
	// RFC 1939 §4: no APOP timestamp in the greeting, so APOP is off.
	if c.write("+OK "+c.srv.hostname()+" ready") != nil {
		return
	}
	for {
		line, err := c.readCommand()
		if err == nil {
			err = c.dispatch(line)
		}
		if err == nil {
			continue
		}
		var re *replyError
		if !errors.As(err, &re) {
			c.endOnError(err)
			return
		}
		if c.reply(re) {
			return
		}
	}
}

// dispatch runs one command of the AUTHORIZATION state (RFC 1939 §4, §7;
// RFC 2449 §5; RFC 2595 §4; RFC 5034 §4).
func (c *conn) dispatch(line []byte) error {
	name, arg, _ := strings.Cut(string(line), " ")
	switch strings.ToUpper(name) {
	case "CAPA":
		return c.cmdCapa(arg)
	case "STLS":
		return c.cmdSTLS(arg)
	case "USER":
		return c.cmdUser(arg)
	case "PASS":
		return c.cmdPass(arg)
	case "AUTH":
		return c.cmdAuth(arg)
	case "APOP":
		return &replyError{code: "AUTH", text: "APOP is not supported: use USER and PASS or AUTH with an app password"}
	case "QUIT":
		c.write("+OK Bye")
		return errDone
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "LAST":
		return errf("Log in first")
	}
	return errf("Unknown command")
}

// readCommand arms the deadline of a new command, counts it and reads its
// line.
func (c *conn) readCommand() ([]byte, error) {
	if c.isInterrupted() {
		return nil, &replyError{code: "SYS/TEMP", text: "Server shutting down", close: true}
	}
	if err := c.setReadDeadline(); err != nil {
		return nil, err
	}
	if !c.tls {
		b, err := c.r.Peek(1)
		if err != nil {
			return nil, fmt.Errorf("read command: %w", err)
		}
		if b[0] == 0x16 { // a TLS ClientHello (RFC 8446 §5.1) on port 110
			c.log.Info("pop3 client started TLS on a plain connection")
			return nil, errDone
		}
	}
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	c.commands++
	if c.commands > c.srv.limits().MaxPreauthCommands {
		c.log.Info("pop3 too many commands before login", "limit", c.srv.limits().MaxPreauthCommands)
		return nil, &replyError{text: "Too many commands before login", close: true}
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return nil, errf("NUL byte in command")
	}
	return line, nil
}

var errLineTooLong = &replyError{text: "Line too long", close: true}

// readLine reads one line under the current deadline and MaxLine.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	if err != nil {
		return nil, fmt.Errorf("read command: %w", err)
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'}), nil
}

// reply writes the -ERR line for re and reports whether the connection
// must end.
func (c *conn) reply(re *replyError) (end bool) {
	end = re.close
	if re.failure {
		c.failures++
		if c.failures >= c.srv.limits().MaxFailedLogins {
			c.log.Info("pop3 too many failed logins", "limit", c.srv.limits().MaxFailedLogins)
			end = true
		}
	}
	if c.write("-ERR "+re.line()) != nil {
		return true
	}
	return end
}

func (c *conn) endOnError(err error) {
	switch {
	case errors.Is(err, errDone), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.isInterrupted() {
			c.write("-ERR [SYS/TEMP] Server shutting down")
		} else {
			c.write("-ERR Disconnected for inactivity")
		}
	default:
		c.log.Debug("pop3 connection error", "err", err)
	}
}

// recoverPanic turns a panic into "-ERR [SYS/TEMP] Internal error"; only
// runtime errors are logged with their text.
func (c *conn) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	c.log.Error("pop3 connection panicked", "panic", proxy.PanicText(v), "stack", string(debug.Stack()))
	c.mu.Lock()
	relaying := c.relaying
	c.mu.Unlock()
	if !relaying {
		c.write("-ERR [SYS/TEMP] Internal error")
	}
}

func (c *conn) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.limits().PreauthTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	return nil
}

// write sends lines, each followed by CRLF, with a write deadline.
func (c *conn) write(lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	nc := c.client()
	if err := nc.SetWriteDeadline(time.Now().Add(c.srv.limits().PreauthTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (c *conn) setReadDeadline() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := time.Now().Add(c.srv.limits().PreauthTimeout)
	if c.interrupted {
		d = time.Unix(1, 0)
	}
	if err := c.netConn.SetReadDeadline(d); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

func (c *conn) client() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.netConn
}

func (c *conn) isInterrupted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interrupted
}

// Interrupt ends the AUTHORIZATION state (Shutdown); a relayed session is
// left alone.
func (c *conn) Interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interrupted = true
	if !c.relaying {
		c.netConn.SetReadDeadline(time.Unix(1, 0))
	}
}

// takeOver marks the connection as relayed to up and returns the client
// connection with its deadlines cleared.
func (c *conn) takeOver(up net.Conn) net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relaying = true
	c.up = up
	c.netConn.SetDeadline(time.Time{})
	return c.netConn
}

// Close closes the client and, when relaying, the upstream connection.
func (c *conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.netConn.Close()
	if c.up != nil {
		c.up.Close()
	}
}
