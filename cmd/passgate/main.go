// Command passgate is the app-password gateway for legacy mail clients: it
// serves IMAP, SMTP submission and the web portal in front of real mail
// servers (serve), runs a self-contained demo (demo), and manages users and
// app passwords (user, apppass) and the store (store migrate). It parses
// commands and wires the packages together; what they decide lives in
// them.
//
// Usage:
//
//	passgate serve        [--config FILE]
//	passgate demo         [--listen-imap ADDR] [--listen-smtp ADDR] [--listen-portal ADDR] [--listen-metrics ADDR]
//	passgate check-config [--config FILE | FILE]
//	passgate reload       [--config FILE]
//	passgate health       [--live] [--timeout 5s]
//	passgate user add USER [--mfa] [--password-stdin]
//	passgate user mfa USER on|off
//	passgate user disable|enable USER
//	passgate user admin USER on|off
//	passgate user password USER --password-stdin
//	passgate user alias add|remove USER ADDRESS
//	passgate user alias list USER
//	passgate user activity USER [-n 20] [--json]
//	passgate user list [--json]
//	passgate apppass create USER --name NAME [--scope imap,smtp] [--expires 90d] [--allow-from CIDR,...] [--json]
//	passgate apppass list USER [--json]
//	passgate apppass revoke USER ID|NAME
//	passgate apppass revoke-all USER [USER...]
//	passgate store migrate --from bolt:PATH --to redis://...|config [--key-prefix P] [--audit=false] [--json]
//	passgate directory test USER [--json] < password
//	passgate bench --target NAME=HOST:PORT ... [--help for the rest]
//	passgate version
//
// Every command takes --config FILE (default passgate.toml). Flags may come
// before or after the positional arguments; a flag the command does not take
// is an error. While serve runs, the management commands go through its
// control socket; otherwise they open the store file. Every change is
// audited with the Unix user who made it (cli:USER, or control:USER through
// the socket).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/passgate/passgate/internal/bench"
)

// usageError marks a mistake in the command line; main prints the usage hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// env is what a command may touch: streams, so tests can run commands
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if addr := os.Getenv(pprofEnv); addr != "" {
		stopPprof, err := startPprof(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "passgate:", err)
			os.Exit(1)
		}
		defer stopPprof()
	}
	if err := run(ctx, e, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "passgate:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "run 'passgate help' for usage")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `passgate: app passwords for IMAP/SMTP clients, in front of your mail server

  passgate serve        [--config FILE]
  passgate demo         [--listen-imap ADDR] [--listen-smtp ADDR]
                        [--listen-portal ADDR] [--listen-metrics ADDR]
  passgate check-config [--config FILE | FILE]
  passgate reload       [--config FILE]   (the server re-reads it, as on SIGHUP)
  passgate health       [--live] [--timeout 5s]   (exit 0: ready; needs metrics.listen)
  passgate user add USER [--mfa] [--password-stdin]
  passgate user mfa USER on|off
  passgate user disable|enable USER
  passgate user admin USER on|off
  passgate user password USER --password-stdin
  passgate user alias add|remove USER ADDRESS
  passgate user alias list USER
  passgate user activity USER [-n 20] [--json]
  passgate user list [--json]
  passgate apppass create USER --name NAME [--scope imap,smtp] [--expires 90d]
                         [--allow-from CIDR,...] [--json]
  passgate apppass list USER [--json]
  passgate apppass revoke USER ID|NAME
  passgate apppass revoke-all USER [USER...]
  passgate store migrate --from bolt:PATH --to redis://...|rediss://...|config
                         [--key-prefix P] [--audit=false] [--json]
  passgate directory test USER [--json]   (password, optional, on stdin)
  passgate bench --target NAME=HOST:PORT [--imaps|--smtp NAME=HOST:PORT]
                 [--user [NAME=]USER] [--secret-env [NAME=]VAR] [--pid NAME=PID]
                 [--baseline NAME] [--only MEASURE,...]   (passgate bench --help)
  passgate version

Every command takes --config FILE (default passgate.toml), and only the
flags shown for it. Changes are audited with your Unix user name.
`

func run(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, e, rest)
	case "demo":
		return cmdDemo(ctx, e, rest)
	case "check-config":
		return cmdCheckConfig(ctx, e, rest)
	case "reload":
		return cmdReload(ctx, e, rest)
	case "health":
		return cmdHealth(ctx, e, rest)
	case "user":
		return cmdUser(ctx, e, rest)
	case "apppass":
		return cmdAppPass(ctx, e, rest)
	case "store":
		return cmdStore(ctx, e, rest)
	case "directory":
		return cmdDirectory(ctx, e, rest)
	case "bench":
		err := bench.Main(ctx, e.stdout, e.stderr, rest)
		if errors.Is(err, bench.ErrUsage) {
			return usagef("%v", err)
		}
		return err
	case "version", "--version":
		if len(rest) > 0 {
			return usagef("%s: unexpected argument %q", cmd, rest[0])
		}
		fmt.Fprintln(e.stdout, "passgate", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}
