package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// Each apppass subcommand parses its own flags: a flag that belongs to
// another one is an error that names it.
func cmdAppPass(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return usagef("apppass: want create, list, revoke, revoke-all, accept-device, policy, stale or retire")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return appPassCreate(ctx, e, rest)
	case "list":
		return appPassList(ctx, e, rest)
	case "revoke":
		return appPassRevoke(ctx, e, rest)
	case "revoke-all":
		return appPassRevokeAll(ctx, e, rest)
	case "accept-device":
		return appPassAcceptDevice(ctx, e, rest)
	case "policy":
		return appPassPolicy(ctx, e, rest)
	case "stale":
		return appPassStale(ctx, e, rest)
	case "retire":
		return appPassRetire(ctx, e, rest)
	}
	return usagef("apppass: unknown subcommand %q", sub)
}

func appPassCreate(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass create")
	name := fs.String("name", "", "name of the app password, e.g. Outlook")
	scope := fs.String("scope", "imap,smtp", "protocols the password may be used with")
	asJSON := fs.Bool("json", false, "print JSON")
	expires := fs.String("expires", "", "lifetime (90d, 12h) or end date (2027-03-01)")
	allowFrom := fs.String("allow-from", "", "networks the password may be used from (192.0.2.0/24,2001:db8::/48)")
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	var o account.AppPasswordOptions
	if o.Scopes, err = parseScopes(*scope); err != nil {
		return err
	}
	if o.Expires, err = parseExpires(*expires, time.Now()); err != nil {
		return err
	}
	if o.AllowFrom, err = parseNetworks(*allowFrom); err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var p account.NewAppPassword
		if err := call(ctx, a, &p, "CreateAppPassword", pos[0], *name, o); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, map[string]string{"id": p.ID, "name": p.Name, "password": p.Password})
		}
		fmt.Fprintf(e.stdout, "App password %q for %s (id %s, %s%s):\n\n    %s\n\n",
			p.Name, pos[0], p.ID, joinScopes(p.Scopes), restrictions(p.Expires, p.AllowFrom), p.Password)
		fmt.Fprintln(e.stdout, "It is shown only this once. Spaces and case do not matter when it is typed.")
		return nil
	})
}

func appPassList(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass list")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args, 1, "exactly one USER")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var pws []account.AppPasswordInfo
		if err := call(ctx, a, &pws, "ListAppPasswords", pos[0]); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, pws)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tFROM\tCLIENT\tDEVICE\tPOLICY\tDRIFT")
		for _, p := range pws {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, joinScopes(p.Scopes),
				p.Created.Format(time.DateTime), dateOrNever(p.Expires), lastUsed(p.LastUsed), deviceColumns(p))
		}
		return tw.Flush()
	})
}

func appPassRevoke(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass revoke")
	pos, err := parseArgs(fs, args, 2, "USER ID")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var p account.AppPasswordInfo
		if err := call(ctx, a, &p, "RevokeAppPassword", pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked app password %q (%s) of %s\n", p.Name, p.ID, pos[0])
		return nil
	})
}

func appPassRevokeAll(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass revoke-all")
	pos, err := parseArgs(fs, args, -1, "at least one USER")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var n int
		if err := call(ctx, a, &n, "RevokeAll", pos); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %d app passwords of %s\n", n, strings.Join(pos, ", "))
		return nil
	})
}

func parseScopes(s string) ([]store.Scope, error) {
	var out []store.Scope
	for _, f := range strings.Split(s, ",") {
		switch sc := store.Scope(strings.ToLower(strings.TrimSpace(f))); sc {
		case store.ScopeIMAP, store.ScopeSMTP, store.ScopePOP3, store.ScopeSieve:
			out = append(out, sc)
		default:
			return nil, usagef("--scope: unknown scope %q (want imap, smtp, pop3, sieve)", f)
		}
	}
	return out, nil
}

func joinScopes(sc []store.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}

func lastUsed(u store.LastUse) string {
	if u.Time.IsZero() {
		return "never\t-\t-"
	}
	client := u.Client
	if client == "" {
		client = "-"
	}
	return fmt.Sprintf("%s\t%s\t%s", u.Time.Format(time.DateTime), u.IP, client)
}

// parseExpires reads --expires: a lifetime in days or hours ("90d", "12h")
// or an end date ("2027-03-01"); "" means never.
func parseExpires(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return time.Time{}, usagef("--expires: %q is not a number of days from 1 to 3650", s)
		}
		return now.AddDate(0, 0, n), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("--expires: %q is not in the future", s)
		}
		return now.Add(d), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--expires: %q is neither a lifetime (90d, 12h) nor a date (2027-03-01)", s)
}

// parseNetworks reads --allow-from: comma-separated CIDRs or addresses.
func parseNetworks(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, usagef("--allow-from: %q is not a network (192.0.2.0/24) or an address", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func restrictions(expires time.Time, allow []netip.Prefix) string {
	var s string
	if !expires.IsZero() {
		s += ", expires " + expires.Format(time.DateTime)
	}
	if len(allow) > 0 {
		nets := make([]string, len(allow))
		for i, p := range allow {
			nets[i] = p.String()
		}
		s += ", only from " + strings.Join(nets, " ")
	}
	return s
}

func dateOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.DateTime)
}
