package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// withAccounts loads the config at cfgPath, opens the account service and
// runs fn.
func withAccounts(ctx context.Context, e env, cfgPath string, fn func(accounts) error) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, closeFn, err := openAccounts(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(a)
}

// Each user subcommand parses its own flags: a flag that belongs to
// another one is an error that names it.
func cmdUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return usagef("user: want add, mfa, reset-mfa, disable, enable, admin, password, language, alias, activity or list")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add":
		return userAdd(ctx, e, rest)
	case "mfa", "admin":
		return userOnOff(ctx, e, sub, rest)
	case "disable", "enable":
		return userDisable(ctx, e, sub, rest)
	case "reset-mfa":
		return userResetMFA(ctx, e, rest)
	case "language":
		return userLanguage(ctx, e, rest)
	case "password":
		return userPassword(ctx, e, rest)
	case "alias":
		return userAlias(ctx, e, rest)
	case "activity":
		return userActivity(ctx, e, rest)
	case "list":
		return userList(ctx, e, rest)
	}
	return usagef("user: unknown subcommand %q", sub)
}

func userAdd(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user add")
	mfa := fs.Bool("mfa", false, "require MFA: only app passwords log in")
	pwStdin := fs.Bool("password-stdin", false, "read the primary password from standard input")
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	u := account.NewUser{Username: pos[0], MFA: *mfa}
	if *pwStdin {
		if u.Password, err = readPassword(e.stdin); err != nil {
			return err
		}
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, "CreateUser", u); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added %s (MFA %s, primary password %s)\n", u.Username, onOff(u.MFA), setOrNot(u.Password != ""))
		return nil
	})
}

// userOnOff is `user mfa USER on|off` and `user admin USER on|off`.
func userOnOff(ctx context.Context, e env, sub string, args []string) error {
	fs, cfg := newFlags("user " + sub)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		return usagef("user %s: want USER on|off", sub)
	}
	op := map[string]string{"mfa": "SetMFA", "admin": "SetAdmin"}[sub]
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, op, pos[0], pos[1] == "on"); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s %s for %s\n", map[string]string{"mfa": "MFA", "admin": "admin"}[sub], pos[1], pos[0])
		return nil
	})
}

// userDisable is `user disable USER` and `user enable USER`.
func userDisable(ctx context.Context, e env, sub string, args []string) error {
	fs, cfg := newFlags("user " + sub)
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, "SetDisabled", pos[0], sub == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%sd %s\n", sub, pos[0])
		return nil
	})
}

// userResetMFA is `user reset-mfa USER`: the account's authenticator and
// recovery codes are removed (a lost phone); the owner sets up a new one
// at their next portal sign-in, and is told by mail if notifications are on.
// An account with no authenticator enrolled is refused (nothing to reset).
func userResetMFA(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user reset-mfa")
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, "ResetMFA", pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "second factor of %s reset: they set up a new authenticator at their next portal sign-in\n", pos[0])
		return nil
	})
}

// userLanguage is `user language USER TAG`: the language of the account's
// notifications (en, fr, ...).
func userLanguage(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user language")
	pos, err := parseArgs(fs, args, 2, "USER LANGUAGE")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, "SetLanguage", pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "language of %s set to %s\n", pos[0], pos[1])
		return nil
	})
}

// userPassword sets the primary password read from stdin; by the
// configured policy it also revokes the account's app passwords.
func userPassword(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user password")
	fromStdin := fs.Bool("password-stdin", false, "read the primary password from standard input (required)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !*fromStdin {
		return usagef("user password: want USER --password-stdin")
	}
	pw, err := readPassword(e.stdin)
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		if err := call(ctx, a, nil, "SetPassword", pos[0], pw); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "primary password of %s changed\n", pos[0])
		return nil
	})
}

// userAlias is `user alias add|remove USER ADDRESS` and `user alias list USER`.
func userAlias(ctx context.Context, e env, args []string) error {
	const want = "user alias: want add|remove USER ADDRESS, or list USER"
	if len(args) == 0 {
		return usagef(want)
	}
	verb := args[0]
	fs, cfg := newFlags("user alias " + verb)
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(pos) == 1:
		return withAccounts(ctx, e, *cfg, func(a accounts) error {
			var al []string
			err := call(ctx, a, &al, "Aliases", pos[0])
			for _, x := range al {
				fmt.Fprintln(e.stdout, x)
			}
			return err
		})
	case (verb == "add" || verb == "remove") && len(pos) == 2:
		op := map[string]string{"add": "AddAlias", "remove": "RemoveAlias"}[verb]
		return withAccounts(ctx, e, *cfg, func(a accounts) error {
			var al []string
			if err := call(ctx, a, &al, op, pos[0], pos[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "aliases of %s: %s\n", pos[0], strings.Join(al, " "))
			return nil
		})
	}
	return usagef(want)
}

func userActivity(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user activity")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("n", 20, "how many recent records")
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var recs []store.AuditRecord
		if err := call(ctx, a, &recs, "Activity", pos[0], *limit); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, recs)
		}
		return printActivity(e.stdout, recs)
	})
}

func userList(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("user list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var users []account.UserInfo
		if err := call(ctx, a, &users, "ListUsers"); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, users)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tMFA\tDISABLED\tPRIMARY\tAPP PASSWORDS\tADMIN\tDIRECTORY\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%v\t%s\t%s\n", u.Username, onOff(u.MFA), u.Disabled,
				primaryOf(u), u.AppPasswords, u.Admin, cmp.Or(u.Directory, "-"), u.Created.Format(time.DateTime))
		}
		return tw.Flush()
	})
}

// primaryOf says where an account's primary password is: set or not in
// passgate's store, or in the directory that provisioned it.
func primaryOf(u account.UserInfo) string {
	if u.Directory != "" {
		return "in directory"
	}
	return setOrNot(u.HasPassword)
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

// printActivity prints recent records as a table: when, what, from where,
// with which client and app password, the decision or change, and who made
// a change.
func printActivity(w io.Writer, recs []store.AuditRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPROTOCOL\tRESULT\tFROM\tTLS\tCLIENT\tAPP PASSWORD\tBY")
	for _, r := range recs {
		from := "-"
		if r.Remote.IsValid() {
			from = r.Remote.Addr().String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.Protocol, r.Result,
			from, dash(r.TLS), dash(r.Client), dash(r.AppPasswordName), dash(r.Actor))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
