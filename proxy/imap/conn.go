package imap

import (
	"bufio"
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

// errDone ends a connection without a further reply (LOGOUT, end of relay).
var errDone = errors.New("imap: connection done")

// conn is one client connection in the pre-auth phase. Its goroutine
// (serve) owns netConn and r until relay hands them to proxy.Splice.
type conn struct {
	srv    *Server
	id     string // session id, random
	remote netip.AddrPort
	log    *slog.Logger // carries session and remote
	ctx    context.Context
	cancel context.CancelFunc

	r        *bufio.Reader
	tls      bool   // the connection is TLS (implicit or after STARTTLS)
	failures int    // failed logins so far
	commands int    // commands read so far (MaxPreauthCommands)
	clientID string // "name/version" from IMAP ID, sanitised

	mu          sync.Mutex // guards the fields below (Shutdown/Close use them)
	netConn     net.Conn   // the client; a *tls.Conn after STARTTLS
	up          net.Conn   // the upstream, once relaying
	bye         *byeConn   // the client side of the relay, once relaying
	relaying    bool
	interrupted bool // Shutdown asked the pre-auth phase to end
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

// serve runs the connection to its end: greeting, command loop, and the
// relay after a successful login.
func (c *conn) serve() {
	defer c.srv.trackConn(c, false)
	defer c.closeNet()
	defer c.cancel()
	defer c.recoverPanic()
	release, limit := c.srv.Limits.Conns.Admit(c.remote.Addr())
	admitted := limit == ""
	if admitted {
		defer release()
	}

	if tc, ok := c.netConn.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.log.Debug("imap tls handshake failed", "err", err)
			return
		}
	}
	if !admitted {
		c.log.Info("imap connection refused: too many connections", "limit", limit)
		c.write("* BYE Too many connections")
		return
	}
	// RFC 3501 §7.1.1: the greeting may carry the capabilities.
	if err := c.write("* OK [CAPABILITY " + c.capabilities() + "] " + c.srv.hostname() + " ready"); err != nil {
		return
	}
	for {
		if c.isInterrupted() {
			c.write("* BYE Server shutting down")
			return
		}
		cmd, err := c.readCommand()
		if c.tooManyCommands(err) {
			c.log.Info("imap too many commands before login", "limit", c.srv.limits().MaxPreauthCommands)
			c.write("* BYE Too many commands before login")
			return
		}
		if err == nil {
			err = c.dispatch(cmd)
		}
		if err == nil {
			continue
		}
		var re *respError
		if !errors.As(err, &re) {
			c.endOnError(err)
			return
		}
		if !re.close {
			// Consume what is left of the refused command, so the next
			// line read is the next command.
			if serr := cmd.skip(); serr != nil {
				if !errors.As(serr, &re) {
					c.endOnError(serr)
					return
				}
			}
		}
		if c.reply(cmd.tag, re) {
			return
		}
	}
}

// tooManyCommands counts a command just read (err is nil or the reply to
// a malformed one) and reports whether it is one more than
// MaxPreauthCommands allows. Read errors end the connection anyway.
func (c *conn) tooManyCommands(err error) bool {
	var re *respError
	if err != nil && !errors.As(err, &re) {
		return false
	}
	c.commands++
	return c.commands > c.srv.limits().MaxPreauthCommands
}

// dispatch runs one command (RFC 3501 §6.1 any state, §6.2 not
// authenticated). Everything else needs a login first.
func (c *conn) dispatch(cmd *command) error {
	switch cmd.name {
	case "CAPABILITY":
		return c.cmdCapability(cmd)
	case "NOOP":
		return c.cmdNoop(cmd)
	case "LOGOUT":
		return c.cmdLogout(cmd)
	case "ID":
		return c.cmdID(cmd)
	case "STARTTLS":
		return c.cmdStartTLS(cmd)
	case "LOGIN":
		return c.cmdLogin(cmd)
	case "AUTHENTICATE":
		return c.cmdAuthenticate(cmd)
	}
	if authenticatedCommands[cmd.name] {
		return bad("Log in first")
	}
	return bad("Unknown command")
}

// authenticatedCommands are valid only after a login (RFC 3501 §6.3-6.4,
// RFC 9051 §6.3-6.4, and common extensions).
var authenticatedCommands = map[string]bool{
	"SELECT": true, "EXAMINE": true, "CREATE": true, "DELETE": true,
	"RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true, "LIST": true,
	"LSUB": true, "STATUS": true, "APPEND": true, "CHECK": true,
	"CLOSE": true, "UNSELECT": true, "EXPUNGE": true, "SEARCH": true,
	"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "UID": true,
	"IDLE": true, "ENABLE": true, "NAMESPACE": true, "GETQUOTA": true,
	"GETQUOTAROOT": true, "SETQUOTA": true, "GETACL": true, "SETACL": true,
	"MYRIGHTS": true, "LISTRIGHTS": true, "GETMETADATA": true,
	"SETMETADATA": true, "COMPRESS": true, "NOTIFY": true, "SORT": true,
	"THREAD": true,
}

// respError is a command's failure: the reply it earns.
type respError struct {
	status   string // "NO" or "BAD"
	code     string // response code without brackets (RFC 5530), or ""
	text     string
	untagged bool // reply with "*": the tag is unknown
	close    bool // close after the reply: the stream cannot be resynchronised
	failure  bool // a failed login: counts towards MaxFailedLogins
}

func (e *respError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("imap: %s [%s] %s", e.status, e.code, e.text)
	}
	return "imap: " + e.status + " " + e.text
}

func bad(text string) *respError { return &respError{status: "BAD", text: text} }

// reply writes the reply for re and reports whether the connection must
// end.
func (c *conn) reply(tag string, re *respError) (end bool) {
	if re.untagged || tag == "" {
		tag = "*"
	}
	line := tag + " " + re.status + " "
	if re.code != "" {
		line += "[" + re.code + "] "
	}
	lines := []string{line + re.text}
	end = re.close
	if re.failure {
		c.failures++
		if c.failures >= c.srv.limits().MaxFailedLogins {
			lines = append(lines, "* BYE Too many failed logins")
			end = true
		}
	}
	if err := c.write(lines...); err != nil {
		return true
	}
	return end
}

// endOnError says goodbye after a read or write error, if a goodbye is
// still possible.
func (c *conn) endOnError(err error) {
	switch {
	case errors.Is(err, errDone), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		// RFC 3501 §5.4: autologout timer.
		if c.isInterrupted() {
			c.write("* BYE Server shutting down")
		} else {
			c.write("* BYE Autologout; idle for too long")
		}
	default:
		c.log.Debug("imap connection error", "err", err)
	}
}

// recoverPanic turns a panic into "* BYE Internal error". Only runtime
// errors are logged with their text: other panic values could carry data.
func (c *conn) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	c.log.Error("imap connection panicked", "panic", proxy.PanicText(v), "stack", string(debug.Stack()))
	c.mu.Lock()
	relaying := c.relaying
	c.mu.Unlock()
	if !relaying {
		c.write("* BYE Internal error")
	}
}

// handshake runs a TLS handshake with the read timeout.
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

// setReadDeadline arms the deadline of the next command (readCommand is its
// only caller); after Shutdown's interrupt the deadline is in the past so
// the read ends at once.
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

// interrupt ends the pre-auth phase (Shutdown): a blocked read returns at
// once. A relayed session is left alone.
func (c *conn) interrupt() {
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

// closeNet closes the client and, when relaying, the upstream connection.
func (c *conn) closeNet() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.netConn.Close()
	if c.up != nil {
		c.up.Close()
	}
}

// oneLine removes CR and LF so that a configured or upstream text cannot
// inject a protocol line.
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ").Replace(s))
}
