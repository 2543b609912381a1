package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// The control socket lets the CLI manage a store that a running server holds
// open (bbolt locks its file for one process). It is a Unix socket with mode
// 0600 next to the store file, speaking JSON-RPC 1.0 (net/rpc/jsonrpc), one
// connection per CLI command. Whoever can open it can manage every account,
// exactly like whoever can open the store file.

const ctlTimeout = 30 * time.Second

// Control is the RPC service; its methods mirror ops.
type Control struct{ ops ops }

// CtlUserFlag carries a user and a switch (MFA on, disabled).
type CtlUserFlag struct {
	Username string
	On       bool
}

// CtlRevoke names one app password of a user.
type CtlRevoke struct{ Username, IDOrName string }

// Empty is the reply of calls that return nothing.
type Empty struct{}

func ctlCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ctlTimeout)
}

func (c *Control) AddUser(a AddUserArgs, _ *Empty) error {
	ctx, cancel := ctlCtx()
	defer cancel()
	return c.ops.AddUser(ctx, a)
}

func (c *Control) SetMFA(a CtlUserFlag, _ *Empty) error {
	ctx, cancel := ctlCtx()
	defer cancel()
	return c.ops.SetMFA(ctx, a.Username, a.On)
}

func (c *Control) SetDisabled(a CtlUserFlag, _ *Empty) error {
	ctx, cancel := ctlCtx()
	defer cancel()
	return c.ops.SetDisabled(ctx, a.Username, a.On)
}

func (c *Control) SetAdmin(a CtlUserFlag, _ *Empty) error {
	ctx, cancel := ctlCtx()
	defer cancel()
	return c.ops.SetAdmin(ctx, a.Username, a.On)
}

func (c *Control) SetPassword(a AddUserArgs, _ *Empty) error {
	ctx, cancel := ctlCtx()
	defer cancel()
	return c.ops.SetPassword(ctx, a.Username, a.Password)
}

// CtlAlias adds or removes one alias.
type CtlAlias struct {
	Username, Alias string
	Add             bool
}

func (c *Control) EditAliases(a CtlAlias, r *[]string) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.EditAliases(ctx, a.Username, a.Alias, a.Add)
	return err
}

func (c *Control) Aliases(username string, r *[]string) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.Aliases(ctx, username)
	return err
}

// CtlActivity asks for the n most recent attempts of a user.
type CtlActivity struct {
	Username string
	N        int
}

func (c *Control) Activity(a CtlActivity, r *[]store.AuditRecord) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.Activity(ctx, a.Username, a.N)
	return err
}

func (c *Control) ListUsers(_ Empty, r *[]UserInfo) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.ListUsers(ctx)
	return err
}

func (c *Control) CreateAppPassword(a CreateArgs, r *authn.NewAppPassword) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.CreateAppPassword(ctx, a)
	return err
}

func (c *Control) ListAppPasswords(username string, r *[]AppPasswordInfo) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.ListAppPasswords(ctx, username)
	return err
}

func (c *Control) RevokeAppPassword(a CtlRevoke, r *AppPasswordInfo) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.RevokeAppPassword(ctx, a.Username, a.IDOrName)
	return err
}

func (c *Control) RevokeAll(usernames []string, r *int) (err error) {
	ctx, cancel := ctlCtx()
	defer cancel()
	*r, err = c.ops.RevokeAll(ctx, usernames)
	return err
}

// listenControl removes a stale socket (one nobody answers on), listens on
// path with mode 0600 and serves o until ln is closed.
func listenControl(path string, o ops, log *slog.Logger) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another passgate is serving on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: remove stale %s: %w", path, err)
	}
	old := syscallUmask(0o177)
	ln, err := net.Listen("unix", path)
	syscallUmask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Control", &Control{ops: o}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	go serveControl(ln, srv, log)
	return ln, nil
}

func serveControl(ln net.Listener, srv *rpc.Server, log *slog.Logger) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("control socket accept", "err", err)
			}
			return
		}
		_ = c.SetDeadline(time.Now().Add(ctlTimeout + 5*time.Second))
		go srv.ServeCodec(jsonrpc.NewServerCodec(c))
	}
}

// remoteOps implements ops by calling a running server.
type remoteOps struct{ c *rpc.Client }

var _ ops = (*remoteOps)(nil)

// dialControl returns remoteOps if a server answers on path.
func dialControl(path string) (*remoteOps, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(ctlTimeout + 5*time.Second))
	return &remoteOps{c: jsonrpc.NewClient(c)}, nil
}

func (r *remoteOps) Close() error { return r.c.Close() }

func (r *remoteOps) call(ctx context.Context, method string, args, reply any) error {
	call := r.c.Go("Control."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case c := <-call.Done:
		if se, ok := c.Error.(rpc.ServerError); ok {
			return errors.New(string(se))
		}
		return c.Error
	}
}

func (r *remoteOps) AddUser(ctx context.Context, a AddUserArgs) error {
	return r.call(ctx, "AddUser", a, &Empty{})
}

func (r *remoteOps) SetMFA(ctx context.Context, u string, on bool) error {
	return r.call(ctx, "SetMFA", CtlUserFlag{u, on}, &Empty{})
}

func (r *remoteOps) SetDisabled(ctx context.Context, u string, d bool) error {
	return r.call(ctx, "SetDisabled", CtlUserFlag{u, d}, &Empty{})
}

func (r *remoteOps) SetAdmin(ctx context.Context, u string, on bool) error {
	return r.call(ctx, "SetAdmin", CtlUserFlag{u, on}, &Empty{})
}

func (r *remoteOps) SetPassword(ctx context.Context, u, pw string) error {
	return r.call(ctx, "SetPassword", AddUserArgs{Username: u, Password: pw}, &Empty{})
}

func (r *remoteOps) EditAliases(ctx context.Context, u, alias string, add bool) (out []string, err error) {
	return out, r.call(ctx, "EditAliases", CtlAlias{u, alias, add}, &out)
}

func (r *remoteOps) Aliases(ctx context.Context, u string) (out []string, err error) {
	return out, r.call(ctx, "Aliases", u, &out)
}

func (r *remoteOps) Activity(ctx context.Context, u string, n int) (out []store.AuditRecord, err error) {
	return out, r.call(ctx, "Activity", CtlActivity{u, n}, &out)
}

func (r *remoteOps) ListUsers(ctx context.Context) (out []UserInfo, err error) {
	return out, r.call(ctx, "ListUsers", Empty{}, &out)
}

func (r *remoteOps) CreateAppPassword(ctx context.Context, a CreateArgs) (out authn.NewAppPassword, err error) {
	return out, r.call(ctx, "CreateAppPassword", a, &out)
}

func (r *remoteOps) ListAppPasswords(ctx context.Context, u string) (out []AppPasswordInfo, err error) {
	return out, r.call(ctx, "ListAppPasswords", u, &out)
}

func (r *remoteOps) RevokeAppPassword(ctx context.Context, u, id string) (out AppPasswordInfo, err error) {
	return out, r.call(ctx, "RevokeAppPassword", CtlRevoke{u, id}, &out)
}

func (r *remoteOps) RevokeAll(ctx context.Context, us []string) (n int, err error) {
	return n, r.call(ctx, "RevokeAll", us, &n)
}
