package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/directory"
)

// cmdDirectory is `passgate directory test USER`: what the configured
// directory says about USER, and whether the password read from standard
// input (optional) is right, with the time each question took.
func cmdDirectory(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "test" {
		return usagef("directory: want test USER")
	}
	fs, cfgPath := newFlags("directory test")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("directory test: want exactly one USER")
	}
	password, err := readOptionalPassword(e.stdin)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, where, closeDir, err := directoryForTest(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDir()
	r := testDirectory(ctx, dir, pos[0], password)
	r.Kind, r.At = string(cfg.Directory.Kind), where
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.print(e.stdout)
	}
	return r.err
}

// directoryForTest opens the configured directory; for kind store, the
// store itself (passgate's own accounts).
func directoryForTest(ctx context.Context, cfg *config.Config, log *slog.Logger) (directory.Directory, string, func() error, error) {
	if cfg.Directory.Kind != config.DirectoryStore {
		d, err := openDirectory(cfg, log)
		if err != nil {
			return nil, "", nil, err
		}
		return d.dir, d.where, d.close, nil
	}
	opened, err := openStore(ctx, cfg, log)
	if isLocked(err) {
		return nil, "", nil, fmt.Errorf("directory.kind is store, and the store %s is in use by a running passgate: "+
			"use `passgate user list` to see its accounts", cfg.Store.Path)
	}
	if err != nil {
		return nil, "", nil, err
	}
	v := newVerifier(cfg, opened, log)
	return authn.StoreDirectory{V: v}, "store " + string(cfg.Store.Backend), opened.Close, nil
}

// readOptionalPassword reads the first line of r: the password to test, or
// none (an empty input only looks the user up).
func readOptionalPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, authn.MaxSecretLen+2)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("password on stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// dirTestReport is what `directory test` found. It never holds the
// password.
type dirTestReport struct {
	Kind        string   `json:"kind"`
	At          string   `json:"at"`
	Login       string   `json:"login"`
	Found       string   `json:"found"` // "yes", "no", or "unknown" (the kind cannot look up)
	Username    string   `json:"username,omitempty"`
	ID          string   `json:"id,omitempty"`
	Disabled    bool     `json:"disabled"`
	MFARequired bool     `json:"mfa_required"`
	Admin       bool     `json:"admin"`
	Addresses   []string `json:"addresses,omitempty"`
	// Password is "right", "wrong", "disabled" or "not tested".
	Password     string        `json:"password"`
	LookupTook   time.Duration `json:"lookup_ns"`
	PasswordTook time.Duration `json:"password_ns,omitempty"`

	err error // the command's failure, after printing
}

// testDirectory asks dir about login: Lookup, then Authenticate when a
// password is given.
func testDirectory(ctx context.Context, dir directory.Directory, login, password string) dirTestReport {
	r := dirTestReport{Login: login, Password: "not tested"}
	start := time.Now()
	e, err := dir.Lookup(ctx, login)
	r.LookupTook = time.Since(start)
	switch {
	case err == nil:
		r.Found = "yes"
		r.fill(e)
	case errors.Is(err, directory.ErrNotFound):
		r.Found = "no"
	case errors.Is(err, directory.ErrUnsupported):
		r.Found = "unknown (this kind cannot look users up)"
	default:
		r.err = fmt.Errorf("lookup: %w", err)
		return r
	}
	if password == "" {
		if r.Found == "no" {
			r.err = fmt.Errorf("USER: %q is not in the directory", login)
		}
		return r
	}
	start = time.Now()
	e, err = dir.Authenticate(ctx, login, password)
	r.PasswordTook = time.Since(start)
	switch {
	case err == nil:
		r.Password = "right"
		r.fill(e)
	case errors.Is(err, directory.ErrDisabled):
		r.Password = "right, but the account is disabled"
		r.fill(e)
		r.err = errors.New("the account is disabled in the directory")
	case errors.Is(err, directory.ErrBadPassword), errors.Is(err, directory.ErrNotFound):
		r.Password = "refused (wrong password, or no such user)"
		r.err = errors.New("the directory refused the password")
	default:
		r.Password = "not checked"
		r.err = fmt.Errorf("authenticate: %w", err)
	}
	return r
}

func (r *dirTestReport) fill(e directory.Entry) {
	if r.Found != "yes" && e.Username != "" && !strings.HasPrefix(r.Found, "unknown") {
		r.Found = "yes"
	}
	r.Username, r.ID, r.Disabled, r.MFARequired, r.Admin, r.Addresses = e.Username, e.ID, e.Disabled, e.MFARequired, e.Admin, e.Addresses
}

func (r *dirTestReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	yes := func(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] }
	fmt.Fprintf(tw, "directory:\t%s (%s)\n", r.Kind, r.At)
	fmt.Fprintf(tw, "login:\t%s\n", r.Login)
	fmt.Fprintf(tw, "found:\t%s\n", r.Found)
	if r.Username != "" {
		fmt.Fprintf(tw, "username:\t%s\n", r.Username)
		fmt.Fprintf(tw, "id:\t%s\n", orDefault(r.ID, "-"))
		fmt.Fprintf(tw, "disabled:\t%s\n", yes(r.Disabled))
		fmt.Fprintf(tw, "mfa required:\t%s\n", yes(r.MFARequired))
		fmt.Fprintf(tw, "admin:\t%s\n", yes(r.Admin))
		fmt.Fprintf(tw, "addresses:\t%s\n", orDefault(strings.Join(r.Addresses, ", "), "-"))
	}
	fmt.Fprintf(tw, "password:\t%s\n", r.Password)
	took := "lookup " + r.LookupTook.Round(10*time.Microsecond).String()
	if r.PasswordTook > 0 {
		took += ", password " + r.PasswordTook.Round(10*time.Microsecond).String()
	}
	fmt.Fprintf(tw, "took:\t%s\n", took)
	tw.Flush()
}

// checkDirectory is check-config's test of the directory: it is built
// (every key checked) and asked about a user that does not exist.
func checkDirectory(ctx context.Context, e env, cfg *config.Config) error {
	if cfg.Directory.Kind == config.DirectoryStore {
		return nil
	}
	d, err := openDirectory(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer d.close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = d.dir.Lookup(ctx, "passgate-check-config")
	switch {
	case err == nil, errors.Is(err, directory.ErrNotFound):
		fmt.Fprintf(e.stdout, "directory %s %s: reachable, answers\n", cfg.Directory.Kind, d.where)
	case errors.Is(err, directory.ErrUnsupported):
		fmt.Fprintf(e.stdout, "directory %s %s: configured (this kind cannot look users up; test a login with `passgate directory test`)\n",
			cfg.Directory.Kind, d.where)
	default:
		return fmt.Errorf("directory %s %s: %w", cfg.Directory.Kind, d.where, err)
	}
	return nil
}
