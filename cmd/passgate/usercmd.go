package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
)

// withOps loads the config named by the flags, opens the operations and
// runs fn.
func withOps(ctx context.Context, e env, cfgPath string, fn func(ops) error) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, closeFn, err := openOps(cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(o)
}

func cmdUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return usagef("user: want add, mfa, disable, enable or list")
	}
	sub := args[0]
	fs, cfg := newFlags("user " + sub)
	mfa := fs.Bool("mfa", false, "require MFA: only app passwords log in")
	pwStdin := fs.Bool("password-stdin", false, "read the primary password from standard input")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		if len(pos) != 1 {
			return usagef("user add: want exactly one USER")
		}
		a := AddUserArgs{Username: pos[0], MFA: *mfa}
		if *pwStdin {
			if a.Password, err = readPassword(e.stdin); err != nil {
				return err
			}
		}
		return withOps(ctx, e, *cfg, func(o ops) error {
			if err := o.AddUser(ctx, a); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "added %s (MFA %s, primary password %s)\n", a.Username, onOff(a.MFA), setOrNot(a.Password != ""))
			return nil
		})
	case "mfa":
		if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
			return usagef("user mfa: want USER on|off")
		}
		return withOps(ctx, e, *cfg, func(o ops) error {
			if err := o.SetMFA(ctx, pos[0], pos[1] == "on"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "MFA %s for %s\n", pos[1], pos[0])
			return nil
		})
	case "disable", "enable":
		if len(pos) != 1 {
			return usagef("user %s: want exactly one USER", sub)
		}
		return withOps(ctx, e, *cfg, func(o ops) error {
			if err := o.SetDisabled(ctx, pos[0], sub == "disable"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%sd %s\n", sub, pos[0])
			return nil
		})
	case "list":
		return withOps(ctx, e, *cfg, func(o ops) error {
			users, err := o.ListUsers(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, users)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tMFA\tDISABLED\tPRIMARY\tAPP PASSWORDS\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%s\n", u.Username, onOff(u.MFA), u.Disabled,
					setOrNot(u.HasPassword), u.AppPasswords, u.Created.Format(time.DateTime))
			}
			return tw.Flush()
		})
	}
	return usagef("user: unknown subcommand %q", sub)
}

// readPassword reads one line (the primary password) from r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("--password-stdin: standard input held no password")
	}
	return pw, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func setOrNot(b bool) string {
	if b {
		return "set"
	}
	return "none"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
