package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	env := map[string]string{"APP": "app-pw"}
	cfg, _, err := parseArgs([]string{
		"--target", "direct=127.0.0.1:11143", "--target", "passgate=127.0.0.1:13143",
		"--imaps", "passgate=127.0.0.1:13993", "--smtp", "direct=127.0.0.1:11587",
		"--user", "alice", "--user", "passgate=alice@example.org",
		"--secret", "direct=a=b", "--secret-env", "passgate=APP", "--pid", "passgate=42",
		"--baseline", "direct", "--only", "login,idle", "-c", "4", "--reps", "1",
	}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Name: "direct", IMAP: "127.0.0.1:11143", SMTP: "127.0.0.1:11587", User: "alice", Secret: "a=b"},
		{Name: "passgate", IMAP: "127.0.0.1:13143", IMAPS: "127.0.0.1:13993", User: "alice@example.org", Secret: "app-pw", PID: 42},
	}
	if len(cfg.Targets) != 2 || cfg.Targets[0] != want[0] || cfg.Targets[1] != want[1] {
		t.Errorf("targets = %+v\nwant %+v", cfg.Targets, want)
	}
	if strings.Join(cfg.Measurements, ",") != "login,idle" || cfg.Concurrency != 4 || cfg.Reps != 1 ||
		strings.Join(cfg.Baselines, ",") != "direct" {
		t.Errorf("config = %+v", cfg)
	}
	if err := cfg.withDefaults().check(); err != nil {
		t.Error(err)
	}
}

// Every command-line mistake is a usage error naming what is wrong, and
// never quoting a secret.
func TestMainRefuses(t *testing.T) {
	const secret = "s3cret-never-shown"
	base := []string{"--target", "a=127.0.0.1:1", "--user", "u", "--secret", secret}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"non-loopback", []string{"--target", "a=192.0.2.1:143", "--user", "u", "--secret", secret}, "not a loopback address"},
		{"hostname", []string{"--target", "a=mail.example.org:143", "--user", "u", "--secret", secret}, "not a loopback address"},
		{"no target", []string{"--user", "u"}, "no target"},
		{"no secret", []string{"--target", "a=127.0.0.1:1", "--user", "u"}, "target a: no secret"},
		{"baseline", append(base, "--baseline", "b"), `baseline "b": no such target`},
		{"measurement", append(base, "--only", "login,fly"), `measurement "fly"`},
		{"count", append(base, "--sessions", "-1"), "sessions -1"},
		{"pid", append(base, "--pid", "a=x"), `want NAME=PID`},
		{"empty env", append(base, "--secret-env", "a=PASSGATE_BENCH_TEST_UNSET"), "PASSGATE_BENCH_TEST_UNSET is empty"},
		{"positional", append(base, "extra"), `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Main(context.Background(), &out, &errOut, tc.args)
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Main = %v, want a usage error with %q", err, tc.want)
			}
			if strings.Contains(err.Error()+out.String()+errOut.String(), secret) {
				t.Error("the secret was printed")
			}
		})
	}
}

// Main prints the table and progress; it runs against real servers here.
func TestMainPrintsTable(t *testing.T) {
	s := startServers(t)
	t.Setenv("BENCH_APP_PASSWORD", s.AppPassword)
	var out, progress bytes.Buffer
	err := Main(context.Background(), &out, &progress, []string{
		"--target", "direct=" + s.DirectIMAP, "--target", "passgate=" + s.IMAP,
		"--user", testUser, "--user", "direct=" + testUser + "*" + testMaster,
		"--secret", "direct=" + s.MasterSecret, "--secret-env", "passgate=BENCH_APP_PASSWORD",
		"--only", "login", "--reps", "1", "-c", "2", "--duration", "200ms", "--max-logins", "100",
	})
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, progress.String())
	}
	for _, want := range []string{"| measure | direct | passgate | passgate / direct |", "| logins/s, C=2, warm | ", "Load average"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(progress.String(), "login passgate rep 1: ") {
		t.Errorf("no progress line:\n%s", progress.String())
	}
}
