// Package dovecotauth is the directory kind for Dovecot's authentication
// service, spoken the way Postfix and Exim speak it: primary passwords are
// verified with AUTH PLAIN on the auth-client socket, and accounts are
// looked up with USER on the auth-userdb (auth-master) socket, each over a
// UNIX socket or TCP (Dovecot's "Dovecot Authentication Protocol" v1).
//
// Implementation notes (invariants):
//   - Every request carries no-penalty: passgate's own limits (authn's
//     Guard) run before the directory is asked, and Dovecot's penalty would
//     otherwise hold pooled connections for up to 15 s, and key on no
//     address at all when the client's is unknown, delaying every login.
//     The client's address is sent as rip= when the context has it
//     (directory.WithClientIP), for Dovecot's logs.
//   - Every request carries "secured": passgate accepts passwords only over
//     TLS (or from the loopback interface), so Dovecot's
//     disable_plaintext_auth would refuse what is in fact protected.
//   - An OK reply with nologin is a refusal (ErrDisabled), as the protocol
//     demands; proxy and host= are accepted, because passgate verifies
//     passwords and does not serve the mailbox itself.
//   - Dovecot answers an unknown user and a wrong password alike (FAIL), so
//     Authenticate reports both as ErrBadPassword: one AUTH each.
//   - Userdb fields decide Disabled, MFARequired and Admin
//     (directory.AttrRule), looked up only after the password verified.
package dovecotauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/internal/connpool"
	"github.com/passgate/passgate/store"
)

// Config configures a Dovecot directory.
type Config struct {
	// AuthSocket is Dovecot's auth-client listener: a UNIX socket path
	// (/run/dovecot/auth-client, or "unix:" + path) or host:port of an
	// inet_listener whose name ends in "-client". Required. TCP carries
	// passwords in clear: use it only on a trusted network.
	AuthSocket string
	// UserdbSocket is the auth-userdb listener (/run/dovecot/auth-userdb,
	// or host:port of an inet_listener whose name ends in "-userdb").
	// Empty: Lookup returns ErrUnsupported and entries carry no state.
	UserdbSocket string
	// Service is the service name sent with each request (Dovecot's
	// %{protocol}, which passdbs and userdbs may depend on). Default
	// "imap".
	Service string
	// Disabled, MFA and Admin test the userdb fields of the account, e.g.
	// "passgate_mfa=yes" (set with userdb_passgate_mfa=yes in a
	// passwd-file, or a column or LDAP attribute in the userdb's query).
	// Zero rules match nobody. A passdb that refuses the account (deny,
	// nologin) also makes Authenticate return ErrDisabled.
	Disabled, MFA, Admin directory.AttrRule
	// PoolSize bounds the connections (and requests in flight) to each
	// socket. Default 16: Dovecot holds every failed AUTH back for
	// auth_failure_delay (2 s) and this client sends one request per
	// connection at a time, so failures occupy connections that long.
	PoolSize int
	// Timeout bounds connecting and each request. Default 5s.
	Timeout time.Duration
	// Names normalises logins before they are sent.
	Names directory.Names
}

// Defaults applied by New.
const (
	DefaultService  = "imap"
	DefaultPoolSize = 16
	DefaultTimeout  = 5 * time.Second
)

// Directory is a Dovecot auth service. Use New; Close it when done.
type Directory struct {
	cfg      Config
	auth     *connpool.Pool[*conn]
	userdb   *connpool.Pool[*conn] // nil without UserdbSocket
	requests atomic.Int64
}

var _ directory.Directory = (*Directory)(nil)

// New checks cfg and applies its defaults. It does not connect.
func New(cfg Config) (*Directory, error) {
	if cfg.AuthSocket == "" {
		return nil, fmt.Errorf("dovecot directory: auth_socket is required")
	}
	if err := cfg.Names.Validate(); err != nil {
		return nil, fmt.Errorf("dovecot directory: %w", err)
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if strings.ContainsAny(cfg.Service, "\t\n\x00") {
		return nil, fmt.Errorf("dovecot directory: service %q contains control characters", cfg.Service)
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	d := &Directory{cfg: cfg}
	d.auth = connpool.New(cfg.PoolSize, d.dialer(cfg.AuthSocket, (*conn).clientHandshake), nil)
	if cfg.UserdbSocket != "" {
		d.userdb = connpool.New(cfg.PoolSize, d.dialer(cfg.UserdbSocket, (*conn).masterHandshake), nil)
	}
	return d, nil
}

// dialer returns a function that connects to addr and runs handshake.
func (d *Directory) dialer(addr string, handshake func(*conn) error) func(ctx context.Context) (*conn, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:") {
		network, addr = "unix", strings.TrimPrefix(addr, "unix:")
	}
	return func(ctx context.Context) (*conn, error) {
		nd := net.Dialer{Timeout: d.cfg.Timeout}
		nc, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		c := newConn(nc, d.cfg.Timeout)
		if err := connpool.WithContext(ctx, c, func() error { return handshake(c) }); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		return c, nil
	}
}

// Close closes the idle connections.
func (d *Directory) Close() error {
	d.auth.Close()
	if d.userdb != nil {
		d.userdb.Close()
	}
	return nil
}

// Requests returns how many requests (AUTH and USER) the directory has sent
// so far; handshakes are not counted.
func (d *Directory) Requests() int64 { return d.requests.Load() }

// Authenticate implements directory.Directory.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	name, err := d.cfg.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("dovecot authenticate: %w", err)
	}
	if password == "" {
		return directory.Entry{}, fmt.Errorf("dovecot authenticate: %w: empty password", directory.ErrBadPassword)
	}
	var r authReply
	err = d.auth.Run(ctx, func(c *conn) error {
		d.requests.Add(1)
		var err error
		r, err = c.auth(ctx, d.cfg.Service, name, password)
		return err
	})
	if err != nil {
		return directory.Entry{}, unavailable("authenticate", err)
	}
	if !r.ok {
		return d.failure(name, r.params)
	}
	entry := directory.Entry{Username: name, ID: name}
	if u, ok := r.params["user"]; ok {
		if canon, err := store.NormalizeUsername(u); err == nil {
			entry.Username, entry.ID = canon, u
		}
	}
	if r.params.has("nologin") {
		entry.Disabled = true
		return entry, fmt.Errorf("dovecot authenticate: %w (nologin)", directory.ErrDisabled)
	}
	if d.userdb == nil {
		return entry, nil
	}
	entry, err = d.lookup(ctx, entry.Username)
	if err != nil {
		return directory.Entry{}, err
	}
	if entry.Disabled {
		return entry, fmt.Errorf("dovecot authenticate: %w", directory.ErrDisabled)
	}
	return entry, nil
}

// failure maps a FAIL reply (RFC-less; see the protocol's FAIL parameters,
// and the booleans of older Dovecot versions) to the directory's errors.
// reason= is Dovecot's text for the user and is kept out of the error, as
// it may say more than passgate tells.
func (d *Directory) failure(name string, p params) (directory.Entry, error) {
	code := p["code"]
	switch {
	case code == "temp_fail" || p.has("temp"):
		return directory.Entry{}, fmt.Errorf("dovecot authenticate: %w: temporary failure in Dovecot's passdb", directory.ErrUnavailable)
	case code == "user_disabled" || p.has("user_disabled"):
		return directory.Entry{Username: name, ID: name, Disabled: true}, fmt.Errorf("dovecot authenticate: %w", directory.ErrDisabled)
	case code == "pass_expired" || p.has("pass_expired"):
		return directory.Entry{}, fmt.Errorf("dovecot authenticate: %w: password expired", directory.ErrBadPassword)
	}
	return directory.Entry{}, fmt.Errorf("dovecot authenticate: %w", directory.ErrBadPassword)
}

// Lookup implements directory.Directory.
func (d *Directory) Lookup(ctx context.Context, username string) (directory.Entry, error) {
	if d.userdb == nil {
		return directory.Entry{}, fmt.Errorf("dovecot lookup without userdb_socket: %w", directory.ErrUnsupported)
	}
	name, err := d.cfg.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("dovecot lookup: %w", err)
	}
	return d.lookup(ctx, name)
}

// lookup asks the userdb for name and applies the rules to its fields.
func (d *Directory) lookup(ctx context.Context, name string) (directory.Entry, error) {
	var r userReply
	err := d.userdb.Run(ctx, func(c *conn) error {
		d.requests.Add(1)
		var err error
		r, err = c.user(d.cfg.Service, name)
		return err
	})
	switch {
	case err != nil:
		return directory.Entry{}, unavailable("lookup", err)
	case r.fail != "":
		return directory.Entry{}, fmt.Errorf("dovecot lookup: %w: %s", directory.ErrUnavailable, r.fail)
	case !r.found:
		return directory.Entry{}, fmt.Errorf("dovecot lookup: %w", directory.ErrNotFound)
	}
	canon, err := store.NormalizeUsername(r.user)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("dovecot lookup: %w: userdb user %q is not a username", directory.ErrUnavailable, r.user)
	}
	return directory.Entry{
		Username:    canon,
		ID:          r.user,
		Disabled:    d.cfg.Disabled.Match(r.fields.values(d.cfg.Disabled.Name)),
		MFARequired: d.cfg.MFA.Match(r.fields.values(d.cfg.MFA.Name)),
		Admin:       d.cfg.Admin.Match(r.fields.values(d.cfg.Admin.Name)),
	}, nil
}

func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("dovecot %s: %w: %w", op, directory.ErrUnavailable, err)
	}
	return fmt.Errorf("dovecot %s: %w: %v", op, directory.ErrUnavailable, err)
}
