package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/passgate/passgate/authn/account"
)

// accounts reaches the account service: in-process on the store (the CLI's
// own door) or through a running server's control socket. Either way the
// operation and its arguments travel as JSON (account.Service.Call), so
// that both paths run the same code and neither mirrors the operations.
type accounts interface {
	Call(ctx context.Context, op string, args json.RawMessage) (json.RawMessage, error)
}

// call runs the account operation op with args through a and decodes its
// result into reply, if reply is not nil.
func call(ctx context.Context, a accounts, reply any, op string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	in, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	out, err := a.Call(ctx, op, in)
	if err != nil || reply == nil {
		return err
	}
	if err := json.Unmarshal(out, reply); err != nil {
		return fmt.Errorf("%s: result: %w", op, err)
	}
	return nil
}

// localAccounts runs the operations on the store this process opened, as
// the Unix user running the CLI.
type localAccounts struct {
	svc *account.Service
	who account.Actor
}

func (l localAccounts) Call(ctx context.Context, op string, args json.RawMessage) (json.RawMessage, error) {
	return l.svc.Call(ctx, l.who, op, args)
}

// cliActor is the Unix user running this process.
func cliActor() account.Actor {
	return account.Actor{Door: account.DoorCLI, Name: currentUser()}
}

// currentUser is the name of this process's user, or its uid if it has
// none.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// uidName is the name of the Unix user uid, or the number if it has none.
func uidName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return id
}
