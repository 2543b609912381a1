package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrUsage is matched (errors.Is) by every command-line mistake Main
// reports.
var ErrUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

const usageHead = `passgate bench: the same IMAP/SMTP load against several servers, one Markdown
table of figures and ratios against a baseline. Loopback targets only.

  passgate bench --target direct=127.0.0.1:11143 --target nginx=127.0.0.1:12143 \
    --target passgate=127.0.0.1:13143 --imaps passgate=127.0.0.1:13993 \
    --user alice --secret direct=alice-secret --secret nginx=app-secret \
    --secret-env passgate=APP_PASSWORD --pid passgate=$(pidof passgate) --baseline direct,nginx

A target is named by its first --target, --imaps or --smtp; columns follow
that order. --user and --secret take NAME=VALUE for one target, or a bare
VALUE for every target. Measurements: ` + "idle, idle-tls, login, login-tls, fetch, fetch-tls, smtp" + `
(each runs on the targets that have its address; idle needs --pid).

`

// Main runs `passgate bench` with args, printing the table to stdout and
// progress to stderr. A measurement that failed makes it return an error
// after the table is printed.
func Main(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	cfg, timeout, err := parseArgs(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Log = stderr
	if err := cfg.withDefaults().check(); err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteMarkdown(stdout); werr != nil && err == nil {
			err = fmt.Errorf("bench: write report: %w", werr)
		}
	}
	if err != nil {
		return err
	}
	if f := rep.Failures(); len(f) > 0 {
		return fmt.Errorf("bench: %d measurements failed (listed under the table)", len(f))
	}
	return nil
}

func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	fs, _ := newFlagSet(os.Getenv)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

// parsed collects the flags whose meaning depends on the targets named.
type parsed struct {
	cfg        Config
	order      []string
	targets    map[string]*Target
	users      []string
	secrets    []string
	secretEnvs []string
	getenv     func(string) string
	cafile     string
	resume     bool
	timeout    time.Duration
	only       string
	baseline   string
}

func (p *parsed) target(name string) *Target {
	if t, ok := p.targets[name]; ok {
		return t
	}
	t := &Target{Name: name}
	p.targets[name] = t
	p.order = append(p.order, name)
	return t
}

// addrFlag sets one address of a target from NAME=HOST:PORT.
func (p *parsed) addrFlag(field func(*Target) *string) func(string) error {
	return func(s string) error {
		name, addr, ok := strings.Cut(s, "=")
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("%q: want NAME=HOST:PORT", s)
		}
		*field(p.target(name)) = addr
		return nil
	}
}

func newFlagSet(getenv func(string) string) (*flag.FlagSet, *parsed) {
	p := &parsed{targets: map[string]*Target{}, getenv: getenv}
	c := &p.cfg
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("target", "NAME=HOST:PORT: plain IMAP address of a target (repeat for each target)", p.addrFlag(func(t *Target) *string { return &t.IMAP }))
	fs.Func("imaps", "NAME=HOST:PORT: implicit-TLS IMAP address of a target (the client-TLS rows)", p.addrFlag(func(t *Target) *string { return &t.IMAPS }))
	fs.Func("smtp", "NAME=HOST:PORT: SMTP submission address of a target (AUTH PLAIN, no TLS)", p.addrFlag(func(t *Target) *string { return &t.SMTP }))
	fs.Func("user", "[NAME=]USER: login name of one target, or of all", func(s string) error { p.users = append(p.users, s); return nil })
	fs.Func("secret", "[NAME=]SECRET: password of one target, or of all (shows in ps: prefer --secret-env)", func(s string) error { p.secrets = append(p.secrets, s); return nil })
	fs.Func("secret-env", "[NAME=]VAR: read the password from environment variable VAR", func(s string) error { p.secretEnvs = append(p.secretEnvs, s); return nil })
	fs.Func("pid", "NAME=PID: process of a target whose tree's memory and CPU are sampled (idle and CPU rows)", func(s string) error {
		name, v, ok := strings.Cut(s, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return fmt.Errorf("%q: want NAME=PID", s)
		}
		p.target(name).PID = pid
		return nil
	})
	fs.StringVar(&p.baseline, "baseline", "", "NAME[,NAME]: ratios against these targets (default: the first target)")
	fs.StringVar(&p.only, "only", "", "MEASURE[,MEASURE]: run only these measurements (default: all)")
	fs.IntVar(&c.Reps, "reps", 3, "repetitions; each figure is the best of them")
	fs.IntVar(&c.Concurrency, "c", 8, "login: concurrent clients")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "login: length of each run")
	fs.IntVar(&c.MaxLogins, "max-logins", 1_000_000, "login: most logins in one run")
	fs.IntVar(&c.FetchSize, "size", 10<<20, "fetch: message size in bytes (appended to INBOX once if missing)")
	fs.IntVar(&c.Fetches, "fetches", 20, "fetch: UID FETCH BODY[] per run")
	fs.IntVar(&c.Sessions, "sessions", 1000, "idle: K logged-in sessions held")
	fs.IntVar(&c.OpenConcurrency, "open-c", 32, "idle: logins at once while opening")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "idle: wait before the memory sample")
	fs.IntVar(&c.SMTPSize, "smtp-size", 10<<20, "smtp: message size in bytes")
	fs.IntVar(&c.SMTPMessages, "smtp-messages", 1, "smtp: messages per run, one session each")
	fs.StringVar(&c.MailFrom, "mail-from", "", "smtp: envelope sender (default: the user, @localhost added if it has no @)")
	fs.StringVar(&c.RcptTo, "rcpt-to", "", "smtp: recipient (default: the sender)")
	fs.DurationVar(&c.IOTimeout, "io-timeout", 30*time.Second, "deadline of each command")
	fs.StringVar(&p.cafile, "cafile", "", "PEM file of CAs that TLS legs must verify against (default: no verification)")
	fs.BoolVar(&p.resume, "tls-resume", false, "resume TLS sessions between connections to a target")
	fs.BoolVar(&c.AllowNonLoopback, "allow-non-loopback", false, "allow targets that are not on loopback")
	fs.DurationVar(&p.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	return fs, p
}

// parseArgs turns the command line into a Config and the run's time bound.
func parseArgs(args []string, getenv func(string) string) (Config, time.Duration, error) {
	fs, p := newFlagSet(getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, 0, err
		}
		return Config{}, 0, usagef("bench: %v", err)
	}
	if fs.NArg() > 0 {
		return Config{}, 0, usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	if err := p.resolve(); err != nil {
		return Config{}, 0, err
	}
	if p.timeout <= 0 {
		return Config{}, 0, usagef("bench: --timeout must be positive")
	}
	return p.cfg, p.timeout, nil
}

// resolve applies the per-target flags and builds the TLS config.
func (p *parsed) resolve() error {
	// A bare VALUE is every target's; NAME=VALUE then overrides it for one.
	apply := func(vals []string, set func(t *Target, v string) error) error {
		for _, named := range []bool{false, true} {
			for _, v := range vals {
				name, rest, ok := strings.Cut(v, "=")
				if isNamed := ok && p.targets[name] != nil; isNamed != named {
					continue
				}
				if named {
					if err := set(p.targets[name], rest); err != nil {
						return err
					}
					continue
				}
				for _, t := range p.targets {
					if err := set(t, v); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	apply(p.users, func(t *Target, v string) error { t.User = v; return nil })
	apply(p.secrets, func(t *Target, v string) error { t.Secret = v; return nil })
	if err := apply(p.secretEnvs, func(t *Target, v string) error {
		if t.Secret = p.getenv(v); t.Secret == "" {
			return usagef("bench: --secret-env: environment variable %s is empty (target %s)", v, t.Name)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, name := range p.order {
		p.cfg.Targets = append(p.cfg.Targets, *p.targets[name])
	}
	if p.baseline != "" {
		p.cfg.Baselines = strings.Split(p.baseline, ",")
	}
	if p.only != "" {
		p.cfg.Measurements = strings.Split(p.only, ",")
	}
	tc := &tls.Config{InsecureSkipVerify: true}
	if p.cafile != "" {
		pem, err := os.ReadFile(p.cafile)
		if err != nil {
			return usagef("bench: --cafile: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("bench: --cafile %s: no PEM certificate", p.cafile)
		}
		tc = &tls.Config{RootCAs: pool}
	}
	if p.resume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	p.cfg.TLS = tc
	return nil
}
