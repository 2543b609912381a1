package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// Each subcommand accepts only its own flags: a flag of another subcommand
// is a usage error that names it, and the command changes nothing.
func TestCLIRejectsFlagsOfOtherSubcommands(t *testing.T) {
	cfg := testConfig(t)
	mustCLI(t, "", "user", "add", "alice@example.org", "--config", cfg)
	mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Phone", "--config", cfg)
	for _, tc := range []struct {
		stdin string
		args  []string
		flag  string // the wrong one
	}{
		{"", []string{"user", "add", "bob@example.org", "--json"}, "json"},
		{"", []string{"user", "mfa", "alice@example.org", "on", "--password-stdin"}, "password-stdin"},
		{"", []string{"user", "disable", "alice@example.org", "--mfa"}, "mfa"},
		{"", []string{"user", "enable", "alice@example.org", "-n", "3"}, "n"},
		{"", []string{"user", "admin", "alice@example.org", "on", "--mfa"}, "mfa"},
		{"a new password\n", []string{"user", "password", "alice@example.org", "--password-stdin", "--mfa"}, "mfa"},
		{"", []string{"user", "alias", "add", "alice@example.org", "info@example.org", "--json"}, "json"},
		{"", []string{"user", "alias", "remove", "alice@example.org", "info@example.org", "--mfa"}, "mfa"},
		{"", []string{"user", "alias", "list", "alice@example.org", "--mfa"}, "mfa"},
		{"", []string{"user", "activity", "alice@example.org", "--mfa"}, "mfa"},
		{"", []string{"user", "list", "-n", "5"}, "n"},
		{"", []string{"apppass", "create", "alice@example.org", "--name", "Laptop", "--mfa"}, "mfa"},
		{"", []string{"apppass", "list", "alice@example.org", "--name", "Phone"}, "name"},
		{"", []string{"apppass", "revoke", "alice@example.org", "Phone", "--scope", "imap"}, "scope"},
		{"", []string{"apppass", "revoke-all", "alice@example.org", "--json"}, "json"},
		{"", []string{"serve", "--mfa"}, "mfa"},
		{"", []string{"check-config", "--json"}, "json"},
		{"", []string{"store", "migrate", "--to", "config", "--mfa"}, "mfa"},
		{"", []string{"demo", "--json"}, "json"},
	} {
		t.Run(strings.Join(tc.args[:2], "_"), func(t *testing.T) {
			_, _, err := cli(t, tc.stdin, append(tc.args, "--config", cfg)...)
			var ue usageError
			if !errors.As(err, &ue) || !regexp.MustCompile(`-`+tc.flag+`\b`).MatchString(err.Error()) {
				t.Fatalf("passgate %s: err = %v, want a usage error naming -%s", strings.Join(tc.args, " "), err, tc.flag)
			}
		})
	}
	// Nothing changed: alice is enabled, not admin, without MFA or aliases,
	// with her one app password; bob was not created.
	users := mustCLI(t, "", "user", "list", "--config", cfg)
	if !regexp.MustCompile(`alice@example.org\s+off\s+false\s+none\s+1\s+false`).MatchString(users) || strings.Contains(users, "bob@") {
		t.Errorf("a refused command changed something:\n%s", users)
	}
	if out := mustCLI(t, "", "user", "alias", "list", "alice@example.org", "--config", cfg); out != "" {
		t.Errorf("aliases after refused commands: %q", out)
	}
}

// Positional arguments that a command does not take are an error too.
func TestCLIRejectsExtraArguments(t *testing.T) {
	cfg := testConfig(t)
	for _, args := range [][]string{
		{"check-config", "extra"},
		{"version", "--json"},
		{"user", "list", "extra"},
		{"user", "disable", "alice@example.org", "bob@example.org"},
	} {
		_, _, err := cli(t, "", append(args, "--config", cfg)...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("passgate %s: err = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

// TestParseArgs: a command's positional arguments are counted after the
// flags wherever they stand, and a wrong count says what the command
// wants.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		n    int
		want string // the error, or "" for none
	}{
		{[]string{"alice", "--config", "x.toml"}, 1, ""},
		{[]string{"--config", "x.toml", "alice", "phone"}, 2, ""},
		{[]string{"alice", "bob", "carol"}, -1, ""},
		{nil, 0, ""},
		{nil, 1, "cmd: want exactly one USER"},
		{[]string{"alice", "bob"}, 1, "cmd: want exactly one USER"},
		{nil, -1, "cmd: want exactly one USER"},
		{[]string{"extra"}, 0, `cmd: unexpected argument "extra"`},
		{[]string{"--nope"}, 0, "cmd: flag provided but not defined: -nope"},
	} {
		fs, _ := newFlags("cmd")
		pos, err := parseArgs(fs, tc.args, tc.n, "exactly one USER")
		var ue usageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("parseArgs(%q, %d): %v", tc.args, tc.n, err)
		case tc.want == "" && tc.n > 0 && len(pos) != tc.n:
			t.Errorf("parseArgs(%q, %d) = %q", tc.args, tc.n, pos)
		case tc.want != "" && (!errors.As(err, &ue) || err.Error() != tc.want):
			t.Errorf("parseArgs(%q, %d): %v, want the usage error %q", tc.args, tc.n, err, tc.want)
		}
	}
}
