package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"time"

	"github.com/passgate/passgate/authn/account"
)

// The control socket lets the CLI manage a store that a running server holds
// open (bbolt locks its file for one process). It is a Unix socket with mode
// 0600 next to the store file, speaking JSON-RPC 1.0 (net/rpc/jsonrpc), one
// connection per CLI command. Whoever can open it can manage every account,
// exactly like whoever can open the store file.
//
// It has two methods. Accounts.Call runs any account.Service operation by
// name (account.Service.Call). Server.Reload reloads the configuration
// (reload.go), as SIGHUP does, and answers why it was refused. The actor of the changes is the
// socket's peer as the kernel reports it (SO_PEERCRED), looked up to a Unix
// user name: "control:<user>". Nothing the client sends can name another.

const ctlTimeout = 30 * time.Second

// CtlCall is the argument of Accounts.Call: an account.Service method name
// and the JSON array of its arguments after the context and the actor.
type CtlCall struct {
	Op   string
	Args json.RawMessage
}

// CtlReply is its result. (A struct, because JSON-RPC 1.0 takes a null
// result for a missing one.)
type CtlReply struct{ Result json.RawMessage }

// control is the RPC receiver of one connection: the service, as its peer.
type control struct {
	svc *account.Service
	who account.Actor
}

// Call runs c.Op as the connection's peer.
func (c *control) Call(a CtlCall, r *CtlReply) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	r.Result, err = c.svc.Call(ctx, c.who, a.Op, a.Args)
	return err
}

// listenControl removes a stale socket (one nobody answers on), listens on
// path with mode 0600 and serves svc until ln is closed.
func listenControl(path string, svc *account.Service, lv *live, log *slog.Logger) (net.Listener, error) {
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
	go serveControl(ln, svc, lv, log)
	return ln, nil
}

func serveControl(ln net.Listener, svc *account.Service, lv *live, log *slog.Logger) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("control socket accept", "err", err)
			}
			return
		}
		go serveControlConn(c, svc, lv, log)
	}
}

// serveControlConn serves one CLI command's connection as its peer.
func serveControlConn(c net.Conn, svc *account.Service, lv *live, log *slog.Logger) {
	uid, err := peerUID(c)
	if err != nil {
		log.Warn("control socket: peer unknown, connection refused", "err", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Now().Add(ctlTimeout + 5*time.Second))
	srv := rpc.NewServer()
	who := account.Actor{Door: account.DoorControl, Name: uidName(uid)}
	err = srv.RegisterName("Accounts", &control{svc: svc, who: who})
	if err == nil {
		err = srv.RegisterName("Server", &serverControl{lv: lv, who: who})
	}
	if err != nil {
		log.Error("control socket", "err", err) // a bug: control has the method
		c.Close()
		return
	}
	srv.ServeCodec(jsonrpc.NewServerCodec(c))
}

// ReloadReply is the result of Server.Reload: the changed keys that need a
// restart and were not applied.
type ReloadReply struct{ NotApplied []string }

// serverControl is the RPC receiver of the server's own operations.
type serverControl struct {
	lv  *live
	who account.Actor
}

// Reload reloads the configuration file (see live.reload).
func (s *serverControl) Reload(_ struct{}, r *ReloadReply) (err error) {
	s.lv.log.Info("reload requested on the control socket", "by", s.who.Name)
	r.NotApplied, err = s.lv.reload()
	return err
}

// reload asks the server to reload its configuration.
func (r *remoteAccounts) reload() (notApplied []string, err error) {
	var reply ReloadReply
	if err := r.c.Call("Server.Reload", struct{}{}, &reply); err != nil {
		if se, ok := err.(rpc.ServerError); ok {
			return nil, errors.New(string(se))
		}
		return nil, err
	}
	return reply.NotApplied, nil
}

// remoteAccounts reaches the account service of a running server.
type remoteAccounts struct{ c *rpc.Client }

var _ accounts = (*remoteAccounts)(nil)

// dialControl returns remoteAccounts if a server answers on path.
func dialControl(path string) (*remoteAccounts, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(ctlTimeout + 5*time.Second))
	return &remoteAccounts{c: jsonrpc.NewClient(c)}, nil
}

func (r *remoteAccounts) Close() error { return r.c.Close() }

func (r *remoteAccounts) Call(ctx context.Context, op string, args json.RawMessage) (json.RawMessage, error) {
	var reply CtlReply
	call := r.c.Go("Accounts.Call", CtlCall{Op: op, Args: args}, &reply, make(chan *rpc.Call, 1))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case c := <-call.Done:
		if se, ok := c.Error.(rpc.ServerError); ok {
			return nil, errors.New(string(se))
		}
		return reply.Result, c.Error
	}
}
