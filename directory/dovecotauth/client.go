package dovecotauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/passgate/passgate/directory"
)

// cpids gives each auth-client connection its own CPID: Dovecot refuses a
// second connection that claims the PID of one still open. Values start at
// 2^31, above any process ID, so they never collide with a login process.
var cpids atomic.Uint32

func init() { cpids.Store(rand.Uint32N(1 << 30)) }

func nextCPID() string { return strconv.FormatUint(uint64(1<<31|cpids.Add(1)&(1<<31-1)), 10) }

// clientHandshake runs the auth-client handshake (VERSION, CPID; the server
// answers VERSION, MECH..., SPID, CUID, COOKIE, DONE) and checks that the
// server speaks major version 1 and offers PLAIN.
func (c *conn) clientHandshake() error {
	c.deadline()
	if err := c.send("VERSION", "1", "2"); err != nil {
		return err
	}
	if err := c.send("CPID", nextCPID()); err != nil {
		return err
	}
	plain := false
	for lines := 0; ; lines++ {
		f, err := c.readLine()
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		switch {
		case lines > 1000:
			return fmt.Errorf("%w: handshake without DONE", errProtocol)
		case f[0] == "VERSION" && (len(f) < 2 || f[1] != "1"):
			return fmt.Errorf("%w: server speaks version %q, want 1", errProtocol, f[1:])
		case f[0] == "MECH" && len(f) > 1 && f[1] == "PLAIN":
			plain = true
		case f[0] == "DONE":
			if !plain {
				return fmt.Errorf("%w: the server does not offer PLAIN (auth_mechanisms)", errProtocol)
			}
			return nil
		}
	}
}

// authReply is the server's answer to AUTH: "OK" or "FAIL" and the
// parameters.
type authReply struct {
	ok     bool
	params params
}

// auth sends AUTH with PLAIN and the initial response and reads the reply.
// Its error is a failure of the connection or the protocol only.
func (c *conn) auth(ctx context.Context, service, user, password string) (authReply, error) {
	c.deadline()
	id := c.id()
	cmd := []string{"AUTH", id, "PLAIN", "service=" + escape(service), "secured", "no-penalty"}
	if ip := directory.ClientIP(ctx); ip.IsValid() {
		cmd = append(cmd, "rip="+ip.String())
	}
	// RFC 4616: authzid NUL authcid NUL password; resp= must be last.
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.send(append(cmd, "resp="+resp)...); err != nil {
		return authReply{}, err
	}
	f, err := c.readLine()
	if err != nil {
		return authReply{}, err
	}
	if len(f) < 2 || f[1] != id {
		return authReply{}, fmt.Errorf("%w: reply %q to AUTH %s", errProtocol, first(f), id)
	}
	switch f[0] {
	case "OK":
		return authReply{ok: true, params: parseParams(f[2:])}, nil
	case "FAIL":
		return authReply{params: parseParams(f[2:])}, nil
	}
	// CONT (PLAIN with an initial response needs no continuation) or
	// anything else: this connection's request state is unknown.
	return authReply{}, fmt.Errorf("%w: unexpected %q reply to AUTH", errProtocol, f[0])
}

func first(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
