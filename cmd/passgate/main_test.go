package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
)

// testConfig writes a minimal config with cheap argon2id parameters and
// returns its path.
func testConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "passgate.toml")
	text := fmt.Sprintf(`[imap]
listen = "127.0.0.1:0"
allow_cleartext = true
[imap.upstream]
address = "127.0.0.1:9"
login = "master"
master_user = "proxy"
master_secret = "master-secret-value"
[store]
path = %q
[authn]
argon_memory_kib = 64
argon_time = 1
[log]
level = "warn"
`, filepath.Join(dir, "passgate.db"))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs one passgate command in-process.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, e, args)
	return out.String(), errb.String(), err
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, stderr, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("passgate %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return out
}

var grouped = regexp.MustCompile(`^[a-km-np-z2-9]{4} [a-km-np-z2-9]{4} [a-km-np-z2-9]{4} [a-km-np-z2-9]{4}$`)

func TestCLIUserAndAppPasswordLifecycle(t *testing.T) {
	cfg := testConfig(t)
	mustCLI(t, "", "user", "add", "Alice@Example.org", "--mfa", "--config", cfg)
	mustCLI(t, "bob's password\n", "user", "add", "--config", cfg, "bob@example.org", "--password-stdin")

	var created struct{ ID, Name, Password string }
	out := mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Outlook", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("apppass create --json printed %q: %v", out, err)
	}
	if created.Name != "Outlook" || created.ID == "" || !grouped.MatchString(created.Password) {
		t.Fatalf("apppass create --json = %+v, want name Outlook, an id and four groups of four", created)
	}
	text := mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Phone", "--scope", "imap", "--config", cfg)
	if !strings.Contains(text, "shown only this once") {
		t.Errorf("apppass create output lacks the show-once notice: %q", text)
	}

	var list []account.AppPasswordInfo
	out = mustCLI(t, "", "apppass", "list", "alice@example.org", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "Outlook" || list[1].Name != "Phone" || len(list[1].Scopes) != 1 {
		t.Fatalf("apppass list = %+v", list)
	}
	if strings.Contains(out, "argon2id") || strings.Contains(out, created.Password) {
		t.Fatalf("apppass list leaks a verifier or the secret: %s", out)
	}

	users := mustCLI(t, "", "user", "list", "--config", cfg)
	if !regexp.MustCompile(`alice@example.org\s+on\s+false\s+none\s+2`).MatchString(users) ||
		!regexp.MustCompile(`bob@example.org\s+off\s+false\s+set\s+0`).MatchString(users) {
		t.Errorf("user list:\n%s", users)
	}

	mustCLI(t, "", "apppass", "revoke", "alice@example.org", "Phone", "--config", cfg)
	mustCLI(t, "", "apppass", "revoke", "alice@example.org", created.ID, "--config", cfg)
	if out := mustCLI(t, "", "apppass", "list", "alice@example.org", "--json", "--config", cfg); strings.TrimSpace(out) != "[]" {
		t.Errorf("after revoking both, list = %s", out)
	}
	mustCLI(t, "", "user", "disable", "bob@example.org", "--config", cfg)
	mustCLI(t, "", "user", "mfa", "bob@example.org", "on", "--config", cfg)
	if users := mustCLI(t, "", "user", "list", "--config", cfg); !regexp.MustCompile(`bob@example.org\s+on\s+true`).MatchString(users) {
		t.Errorf("bob not disabled with MFA on:\n%s", users)
	}
}

func TestCLIErrorsNameWhatIsWrong(t *testing.T) {
	cfg := testConfig(t)
	mustCLI(t, "", "user", "add", "alice@example.org", "--config", cfg)
	mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Outlook", "--config", cfg)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apppass", "create", "alice@example.org"}, "name"},
		{[]string{"apppass", "create", "alice@example.org", "--name", "Outlook"}, "Outlook"},
		{[]string{"apppass", "create", "alice@example.org", "--name", "X", "--scope", "pop9"}, "--scope"},
		{[]string{"apppass", "create", "nobody@example.org", "--name", "X"}, "nobody@example.org"},
		{[]string{"apppass", "revoke", "alice@example.org", "nope"}, "nope"},
		{[]string{"apppass", "revoke-all", "alice@example.org", "ghost@example.org"}, "ghost@example.org"},
		{[]string{"user", "add", "alice@example.org"}, "alice@example.org"},
		{[]string{"user", "add", "bad user"}, "username"},
		{[]string{"user", "mfa", "alice@example.org", "maybe"}, "on|off"},
		{[]string{"user", "add", "x@example.org", "--password-stdin"}, "--password-stdin"},
		{[]string{"frobnicate"}, "frobnicate"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			_, _, err := cli(t, "", append(tc.args, "--config", cfg)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	// The failed revoke-all deleted nothing.
	if out := mustCLI(t, "", "apppass", "list", "alice@example.org", "--config", cfg); !strings.Contains(out, "Outlook") {
		t.Errorf("revoke-all with an unknown user deleted something:\n%s", out)
	}
	if _, _, err := cli(t, "", "user", "list", "--config", filepath.Join(t.TempDir(), "missing.toml")); err == nil ||
		!strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing config: err = %v, want the path named", err)
	}
}

// While serve holds the store open, the CLI goes through the control socket.
func TestCLIThroughControlSocketWhileServing(t *testing.T) {
	path := testConfig(t)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listening, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	log, _ := newLogger(cfg.Log, &logs)
	go func() { done <- serve(ctx, cfg, log, func(l listening) { ready <- l }) }()
	var l listening
	select {
	case l = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not become ready")
	}
	mustCLI(t, "", "user", "add", "carol@example.org", "--mfa", "--config", path)
	out := mustCLI(t, "", "apppass", "create", "carol@example.org", "--name", "Thunderbird", "--json", "--config", path)
	var created struct{ Password string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || !grouped.MatchString(created.Password) {
		t.Fatalf("create through the socket printed %q (%v)", out, err)
	}
	if out := mustCLI(t, "", "apppass", "list", "carol@example.org", "--config", path); !strings.Contains(out, "Thunderbird") {
		t.Fatalf("list through the socket:\n%s", out)
	}
	// A login through the IMAP listener: authn says ok, the upstream (a
	// closed port) fails; both show in the account's activity.
	imapLogin(t, l.IMAP.String(), "carol@example.org", created.Password)
	act := mustCLI(t, "", "user", "activity", "carol@example.org", "--config", path)
	if !regexp.MustCompile(`imap\s+upstream-error\s+127\.0\.0\.1[\s\S]*imap\s+ok\s+127\.0\.0\.1\s+-\s+-\s+Thunderbird`).MatchString(act) {
		t.Errorf("user activity after one login:\n%s", act)
	}
	_, _, err = cli(t, "", "apppass", "revoke", "carol@example.org", "nope", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error through the socket = %v, want it to name the ID", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	// Stopped: the CLI opens the file itself and sees what the server stored.
	if out := mustCLI(t, "", "apppass", "list", "carol@example.org", "--config", path); !strings.Contains(out, "Thunderbird") {
		t.Fatalf("list after stop:\n%s", out)
	}
	if strings.Contains(logs.String(), created.Password) {
		t.Fatal("the server log holds the app password")
	}
}

func TestCLIAppPasswordOptionsAliasesAdminPassword(t *testing.T) {
	cfg := testConfig(t)
	mustCLI(t, "first password\n", "user", "add", "dave@example.org", "--password-stdin", "--config", cfg)
	out := mustCLI(t, "", "apppass", "create", "dave@example.org", "--name", "Office", "--expires", "90d",
		"--allow-from", "192.0.2.7/24,2001:db8::1", "--config", cfg)
	if !strings.Contains(out, "only from 192.0.2.0/24 2001:db8::1/128") || !strings.Contains(out, "expires ") {
		t.Errorf("create with options printed:\n%s", out)
	}
	var list []account.AppPasswordInfo
	if err := json.Unmarshal([]byte(mustCLI(t, "", "apppass", "list", "dave@example.org", "--json", "--config", cfg)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(list[0].AllowFrom) != 2 || time.Until(list[0].Expires) < 89*24*time.Hour {
		t.Fatalf("stored options: %+v", list)
	}
	for _, bad := range [][]string{{"--expires", "0d"}, {"--expires", "soon"}, {"--allow-from", "192.0.2.0/33"}} {
		_, _, err := cli(t, "", append([]string{"apppass", "create", "dave@example.org", "--name", "X", "--config", cfg}, bad...)...)
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: err = %v, want it to name %s", bad, err, bad[0])
		}
	}

	mustCLI(t, "", "user", "alias", "add", "dave@example.org", "Sales@Example.org", "--config", cfg)
	mustCLI(t, "", "user", "alias", "add", "dave@example.org", "info@example.org", "--config", cfg)
	mustCLI(t, "", "user", "alias", "remove", "dave@example.org", "info@example.org", "--config", cfg)
	if out := mustCLI(t, "", "user", "alias", "list", "dave@example.org", "--config", cfg); out != "sales@example.org\n" {
		t.Errorf("alias list = %q", out)
	}
	if _, _, err := cli(t, "", "user", "alias", "remove", "dave@example.org", "nobody@example.org", "--config", cfg); err == nil {
		t.Error("removing an alias that is not there succeeded")
	}
	mustCLI(t, "", "user", "admin", "dave@example.org", "on", "--config", cfg)
	if out := mustCLI(t, "", "user", "list", "--json", "--config", cfg); !strings.Contains(out, `"admin": true`) {
		t.Errorf("user list after admin on:\n%s", out)
	}

	// Changing the primary password revokes the app passwords (default policy).
	mustCLI(t, "second password\n", "user", "password", "dave@example.org", "--password-stdin", "--config", cfg)
	if out := mustCLI(t, "", "apppass", "list", "dave@example.org", "--json", "--config", cfg); strings.TrimSpace(out) != "[]" {
		t.Errorf("app passwords after a primary password change: %s", out)
	}
}

// imapLogin logs in over a raw IMAP connection and returns the tagged reply.
func imapLogin(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	fmt.Fprintf(c, "a LOGIN %q %q\r\n", user, pass)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("login reply: %v", err)
		}
		if strings.HasPrefix(line, "a ") {
			return line
		}
	}
}
