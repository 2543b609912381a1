package pop3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/passgate/passgate/proxy"
)

// errDone ends a connection without a further reply (QUIT, end of relay).
var errDone = proxy.ErrDone

// conn is one client connection in the AUTHORIZATION state. Its goroutine
// (serve) owns netConn and r until the relay hands them to proxy.Splice.
type conn struct {
	*proxy.PreauthConn // the client, and what Shutdown and Close use

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
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	c := &conn{
		srv:    s,
		id:     proxy.NewSessionID(),
		remote: proxy.RemoteAddrPort(nc.RemoteAddr()),
		tls:    implicitTLS,
		r:      bufio.NewReaderSize(nc, s.limits().MaxLine),
	}
	c.log = s.logger().With("session", c.id, "remote", c.remote.String())
	c.PreauthConn = proxy.NewPreauthConn(nc, "pop3", c.log, s.limits().PreauthTimeout)
	if w := s.helloWatch(); w != nil {
		c.WatchHellos(w)
	}
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
	defer c.RecoverPanic("-ERR [SYS/TEMP] Internal error")
	release, ok := c.Open(c.ctx, c.srv.Limits.Conns, c.remote.Addr(), "-ERR [SYS/TEMP] Too many connections")
	defer release()
	if !ok {
		return
	}
	// RFC 1939 §4: no APOP timestamp in the greeting, so APOP is off.
	if c.Write("+OK "+c.srv.hostname()+" ready") != nil {
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
		c.Write("+OK Bye")
		return errDone
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "LAST":
		return errf("Log in first")
	}
	return errf("Unknown command")
}

// readCommand arms the deadline of a new command, counts it and reads its
// line.
func (c *conn) readCommand() ([]byte, error) {
	if c.IsInterrupted() {
		return nil, &replyError{code: "SYS/TEMP", text: "Server shutting down", close: true}
	}
	if err := c.SetReadDeadline(); err != nil {
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
	if c.Write("-ERR "+re.line()) != nil {
		return true
	}
	return end
}

func (c *conn) endOnError(err error) {
	c.EndOnError(err, "-ERR [SYS/TEMP] Server shutting down", "-ERR Disconnected for inactivity")
}
