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

	"github.com/passgate/passgate/store"
)

// withOps loads the config named by the flags, opens the operations and
// runs fn.
func withOps(ctx context.Context, e env, cfgPath string, fn func(ops) error) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, closeFn, err := openOps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(o)
}

func cmdUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return usagef("user: want add, mfa, disable, enable, admin, password, alias, activity or list")
	}
	sub := args[0]
	fs, cfg := newFlags("user " + sub)
	mfa := fs.Bool("mfa", false, "require MFA: only app passwords log in")
	pwStdin := fs.Bool("password-stdin", false, "read the primary password from standard input")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("n", 20, "activity: how many recent attempts")
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
	case "admin":
		if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
			return usagef("user admin: want USER on|off")
		}
		return withOps(ctx, e, *cfg, func(o ops) error {
			if err := o.SetAdmin(ctx, pos[0], pos[1] == "on"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "admin %s for %s\n", pos[1], pos[0])
			return nil
		})
	case "password":
		return cmdUserPassword(ctx, e, *cfg, pos, *pwStdin)
	case "alias":
		return cmdUserAlias(ctx, e, *cfg, pos)
	case "activity":
		if len(pos) != 1 {
			return usagef("user activity: want exactly one USER")
		}
		return withOps(ctx, e, *cfg, func(o ops) error {
			recs, err := o.Activity(ctx, pos[0], *limit)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, recs)
			}
			return printActivity(e.stdout, recs)
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
			fmt.Fprintln(tw, "USER\tMFA\tDISABLED\tPRIMARY\tAPP PASSWORDS\tADMIN\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%v\t%s\n", u.Username, onOff(u.MFA), u.Disabled,
					setOrNot(u.HasPassword), u.AppPasswords, u.Admin, u.Created.Format(time.DateTime))
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

// cmdUserPassword sets the primary password read from stdin; by the
// configured policy it also revokes the account's app passwords.
func cmdUserPassword(ctx context.Context, e env, cfg string, pos []string, fromStdin bool) error {
	if len(pos) != 1 || !fromStdin {
		return usagef("user password: want USER --password-stdin")
	}
	pw, err := readPassword(e.stdin)
	if err != nil {
		return err
	}
	return withOps(ctx, e, cfg, func(o ops) error {
		if err := o.SetPassword(ctx, pos[0], pw); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "primary password of %s changed\n", pos[0])
		return nil
	})
}

// cmdUserAlias is `user alias add|remove USER ADDRESS` and `user alias list USER`.
func cmdUserAlias(ctx context.Context, e env, cfg string, pos []string) error {
	switch {
	case len(pos) == 2 && pos[0] == "list":
		return withOps(ctx, e, cfg, func(o ops) error {
			al, err := o.Aliases(ctx, pos[1])
			for _, a := range al {
				fmt.Fprintln(e.stdout, a)
			}
			return err
		})
	case len(pos) == 3 && (pos[0] == "add" || pos[0] == "remove"):
		return withOps(ctx, e, cfg, func(o ops) error {
			al, err := o.EditAliases(ctx, pos[1], pos[2], pos[0] == "add")
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "aliases of %s: %s\n", pos[1], strings.Join(al, " "))
			return nil
		})
	}
	return usagef("user alias: want add|remove USER ADDRESS, or list USER")
}

// printActivity prints recent attempts as a table: when, what, from where,
// with which client and app password, and the decision.
func printActivity(w io.Writer, recs []store.AuditRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPROTOCOL\tRESULT\tFROM\tTLS\tCLIENT\tAPP PASSWORD")
	for _, r := range recs {
		from := "-"
		if r.Remote.IsValid() {
			from = r.Remote.Addr().String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.Protocol, r.Result,
			from, dash(r.TLS), dash(r.Client), dash(r.AppPasswordName))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
