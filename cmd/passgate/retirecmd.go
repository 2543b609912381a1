package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passgate/passgate/authn/account"
)

// appPassStale prints the app passwords of every account not used for
// --older-than.
func appPassStale(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass stale")
	olderThan := fs.String("older-than", fmt.Sprintf("%dd", account.DefaultStaleAge/(24*time.Hour)), "idle for at least this long: days (60d) or a Go duration")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	age, err := parseAge("--older-than", *olderThan)
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var list []account.StaleAppPassword
		if err := call(ctx, a, &list, "Stale", age); err != nil {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []account.StaleAppPassword{}
			}
			return printJSON(e.stdout, list)
		}
		return printStale(e.stdout, list)
	})
}

// appPassRetire applies authn.unused_after once, for cron.
func appPassRetire(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass retire")
	dry := fs.Bool("dry-run", false, "report what would be retired and warned, change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var rep account.RetireReport
		if err := call(ctx, a, &rep, "RetireUnused", *dry); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, rep)
		}
		verb, warn := "retired", "warned"
		if *dry {
			verb, warn = "would retire", "would warn"
		}
		fmt.Fprintf(e.stdout, "%s %d unused app passwords, %s about %d\n", verb, len(rep.Retired), warn, len(rep.Warned))
		if len(rep.Retired) > 0 {
			fmt.Fprintf(e.stdout, "\n%s:\n", verb)
			if err := printStale(e.stdout, rep.Retired); err != nil {
				return err
			}
		}
		if len(rep.Warned) > 0 {
			fmt.Fprintf(e.stdout, "\n%s:\n", warn)
			return printStale(e.stdout, rep.Warned)
		}
		return nil
	})
}

func printStale(w io.Writer, list []account.StaleAppPassword) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tID\tNAME\tCREATED\tLAST USED\tREMOVAL")
	for _, p := range list {
		last := "never"
		if !p.LastUsed.Time.IsZero() {
			last = p.LastUsed.Time.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Username, p.ID, p.Name, p.Created.Format(time.DateTime),
			last, dateOrNever(p.RetireAt))
	}
	return tw.Flush()
}

// parseAge reads a positive age in days ("60d") or as a Go duration.
func parseAge(flag, s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, usagef("%s: %q is not a positive age such as 60d or 12h", flag, s)
}
