package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/passgate/passgate/proxy"
)

// errDone ends a connection without a further reply (LOGOUT, end of relay).
var errDone = proxy.ErrDone

// conn is one client connection in the pre-auth phase. Its goroutine
// (serve) owns the client connection and r until relay hands them to
// proxy.Splice.
type conn struct {
	*proxy.PreauthConn // the client, and what Shutdown and Close use

	srv    *Server
	id     string // session id, random
	remote netip.AddrPort
	log    *slog.Logger // carries session and remote
	ctx    context.Context

	r        *bufio.Reader
	tls      bool   // the connection is TLS (implicit or after STARTTLS)
	failures int    // failed logins so far
	commands int    // commands read so far (MaxPreauthCommands)
	clientID string // "name/version" from IMAP ID, sanitised
	// clientName is the name alone: what first-use binding compares (a
	// new version is not a new device).
	clientName string

	loggedIn *loggedIn // set by a successful login, for relay

	byeMu      sync.Mutex    // guards up, relayDone, relayEnded and stopRelay
	up         *upstreamConn // the upstream side of the relay, once relaying
	relayDone  bool          // the relay has ended
	relayEnded chan struct{} // made by a goodbye that waits; closed when the relay has ended
	stopRelay  func(error)   // ends the relay once it has started (proxy.SpliceStoppable)
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	c := &conn{
		srv:    s,
		id:     proxy.NewSessionID(),
		remote: proxy.RemoteAddrPort(nc.RemoteAddr()),
		tls:    implicitTLS,
		r:      getReader(nc, s.limits().MaxLine),
	}
	c.log = s.logger().With("session", c.id, "remote", c.remote.String())
	c.PreauthConn = proxy.NewPreauthConn(nc, "imap", c.log, s.limits().PreauthTimeout)
	if w := s.helloWatch(); w != nil {
		c.WatchHellos(w)
	}
	return c
}

// serve runs the connection to its end: greeting, command loop, and the
// relay after a successful login. ctx is the server's (Close cancels it).
func (c *conn) serve(ctx context.Context) {
	// ctx itself, not a child: everything that uses c.ctx runs on this
	// goroutine, and a child would cost a relayed session a context (and
	// a children map) for its whole life.
	c.ctx = ctx
	defer c.releaseReader() // after end: no read follows
	release := func() {}
	end := sync.OnceFunc(func() {
		release()
		c.Close()
	})
	relayed := false
	defer func() {
		if !relayed {
			end()
		}
	}()
	defer c.RecoverPanic("* BYE Internal error")
	var ok bool
	release, ok = c.Open(c.ctx, c.srv.Limits.Conns, c.remote.Addr(), "* BYE Too many connections")
	if !ok {
		return
	}
	if c.preauth() {
		// Called here, not from the login command, so that no pre-auth
		// frame or command (whose reader is MaxLine bytes) outlives the
		// login. The relay goes on without this goroutine and calls end.
		relayed = c.relay(end)
	}
}

// releaseReader gives the pre-auth reader back (reader.go); no read of c
// may follow.
func (c *conn) releaseReader() {
	if c.r != nil {
		putReader(c.r)
		c.r = nil
	}
}

// errLoggedIn is what a successful login returns: preauth ends, and serve
// relays c.loggedIn.
var errLoggedIn = errors.New("imap: logged in")

// preauth greets the client and runs its commands until one logs it in
// (it reports true, with c.loggedIn set) or the connection must end.
func (c *conn) preauth() bool {
	// RFC 3501 §7.1.1: the greeting may carry the capabilities.
	if err := c.Write("* OK [CAPABILITY " + c.capabilities() + "] " + c.srv.hostname() + " ready"); err != nil {
		return false
	}
	for {
		if c.IsInterrupted() {
			c.Write("* BYE Server shutting down")
			return false
		}
		cmd, err := c.readCommand()
		if c.tooManyCommands(err) {
			c.log.Info("imap too many commands before login", "limit", c.srv.limits().MaxPreauthCommands)
			c.Write("* BYE Too many commands before login")
			return false
		}
		if err == nil {
			err = c.dispatch(cmd)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errLoggedIn) {
			return true
		}
		var re *respError
		if !errors.As(err, &re) {
			c.endOnError(err)
			return false
		}
		if !re.close {
			// Consume what is left of the refused command, so the next
			// line read is the next command.
			if serr := cmd.skip(); serr != nil {
				if !errors.As(serr, &re) {
					c.endOnError(serr)
					return false
				}
			}
		}
		if c.reply(cmd.tag, re) {
			return false
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
	if err := c.Write(lines...); err != nil {
		return true
	}
	return end
}

// endOnError says goodbye after a read or write error, if a goodbye is
// still possible (RFC 3501 §5.4: autologout timer).
func (c *conn) endOnError(err error) {
	c.EndOnError(err, "* BYE Server shutting down", "* BYE Autologout; idle for too long")
}
