package integration

import (
	"encoding/json"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// printedAppPassword is how `apppass create` shows a password: four groups
// of four characters.
var printedAppPassword = regexp.MustCompile(`(?m)^\s*([a-z0-9]{4} [a-z0-9]{4} [a-z0-9]{4} [a-z0-9]{4})\s*$`)

type userInfo struct {
	Username     string `json:"username"`
	MFA          bool   `json:"mfa"`
	Disabled     bool   `json:"disabled"`
	AppPasswords int    `json:"app_passwords"`
	HasPassword  bool   `json:"has_primary_password"`
	Directory    string `json:"directory"`
}

// users returns `user list --json` by username.
func (pg *Passgate) users(t testing.TB) map[string]userInfo {
	t.Helper()
	var list []userInfo
	out := pg.run(t, "user", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("user list --json: %v in %q", err, out)
	}
	m := make(map[string]userInfo, len(list))
	for _, u := range list {
		m[u.Username] = u
	}
	return m
}

// TestCLIOffline runs the CLI on the database file while serve is stopped,
// then checks that serve sees what it wrote.
func TestCLIOffline(t *testing.T) {
	d := sharedDovecot(t)
	pg := newPassgate(t, d, passgateOpts{})
	if out, errOut, code := pg.runErr(t, "", "check-config"); code != 0 {
		t.Fatalf("check-config: exit %d\n%s%s", code, out, errOut)
	}

	user, primary := d.newUser(t)
	// Flags before the positional argument work too.
	pg.runStdin(t, primary+"\n", "user", "add", "--mfa", "--password-stdin", user)
	out := pg.run(t, "apppass", "create", user, "--name", "laptop")
	m := printedAppPassword.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("apppass create printed %q, want a password of four groups of four characters", out)
	}
	password := m[1]
	if u, ok := pg.users(t)[user]; !ok || !u.MFA || u.AppPasswords != 1 {
		t.Fatalf("user list: %+v, want %s with MFA and one app password", u, user)
	}

	pg.serve(t)
	c := pg.login(t, viaTLS, user, password)
	selectInbox(t, c)
	c.Close()
	pg.stop(t)

	// The last use is recorded, and readable once serve is gone.
	var list []struct {
		Name     string `json:"name"`
		LastUsed struct {
			IP string `json:"ip"`
		} `json:"last_used"`
	}
	if err := json.Unmarshal([]byte(pg.run(t, "apppass", "list", user, "--json")), &list); err != nil {
		t.Fatalf("apppass list --json: %v", err)
	}
	if len(list) != 1 || list[0].Name != "laptop" || list[0].LastUsed.IP != "127.0.0.1" {
		t.Fatalf("apppass list after a login: %+v, want laptop last used from 127.0.0.1", list)
	}
	assertNoSecrets(t, pg.Output(), password, primary, masterSecret)
	// Both changes were made on the file, by this Unix user.
	pg.wantChanges(t, user, "cli:"+currentUser(t), "user-created", "app-password-created")
}

// TestCLIOnline manages users and app passwords while serve runs (the CLI
// then goes through serve's control socket) and checks that each change
// takes effect on the next login.
func TestCLIOnline(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{})
	user, primary := d.newUser(t)
	pg.addUser(t, user, primary, true)
	p := pg.createAppPassword(t, user, "phone")

	steps := []struct {
		name    string
		command []string
		secret  string
		code    imap.ResponseCode // empty: the login must succeed
	}{
		{"app password works", nil, p.Password, ""},
		{"primary refused with MFA", nil, primary, imap.ResponseCodeAlert},
		{"mfa off allows the primary password", []string{"user", "mfa", user, "off"}, primary, ""},
		{"mfa on refuses it again", []string{"user", "mfa", user, "on"}, primary, imap.ResponseCodeAlert},
		{"disabled account is refused", []string{"user", "disable", user}, p.Password, imap.ResponseCodeAuthenticationFailed},
		{"enabled account works again", []string{"user", "enable", user}, p.Password, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.command != nil {
				pg.run(t, s.command...)
			}
			if s.code != "" {
				wantCode(t, pg.loginError(t, viaTLS, user, s.secret), s.code, "")
				return
			}
			selectInbox(t, pg.login(t, viaTLS, user, s.secret))
		})
	}
	if u := pg.users(t)[user]; !u.MFA || u.Disabled {
		t.Fatalf("user list: %+v, want MFA on and enabled", u)
	}

	failures := []struct {
		name string
		args []string
	}{
		{"duplicate user", []string{"user", "add", user, "--password-stdin"}},
		{"unknown app password", []string{"apppass", "revoke", user, "no-such-id"}},
		{"unknown user", []string{"apppass", "create", "nobody@example.org", "--name", "x"}},
		{"unknown subcommand", []string{"apppass", "frobnicate", user}},
		{"revoke-all with an unknown user", []string{"apppass", "revoke-all", user, "nobody@example.org"}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			_, errOut, code := pg.runErr(t, "secret\n", f.args...)
			if code == 0 || strings.TrimSpace(errOut) == "" {
				t.Fatalf("passgate %s: exit %d, stderr %q; want a failure explained on stderr", strings.Join(f.args, " "), code, errOut)
			}
		})
	}
	// revoke-all with an unknown user deleted nothing.
	selectInbox(t, pg.login(t, viaTLS, user, p.Password))
	assertNoSecrets(t, pg.Output(), p.Password, primary, masterSecret)
	// Each change went through the socket; the server named its peer.
	pg.wantChanges(t, user, "control:"+currentUser(t), "user-created", "app-password-created",
		"mfa-off", "require-mfa", "disable", "enable")
}

// wantChanges checks that the account changes in user's activity are
// exactly results, oldest first, each made by actor.
func (pg *Passgate) wantChanges(t testing.TB, user, actor string, results ...string) {
	t.Helper()
	var recs []struct{ Protocol, Result, Actor string }
	out := pg.run(t, "user", "activity", user, "-n", "100", "--json")
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("user activity --json: %v in %q", err, out)
	}
	var got []string
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Protocol == "admin" {
			got = append(got, r.Result)
			if r.Actor != actor {
				t.Errorf("change %s made by %q, want %q", r.Result, r.Actor, actor)
			}
		}
	}
	if !slices.Equal(got, results) {
		t.Errorf("changes of %s: %q, want %q", user, got, results)
	}
}

func currentUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestCheckConfigRejects checks that a misconfiguration fails loudly, naming
// what is wrong.
func TestCheckConfigRejects(t *testing.T) {
	d := sharedDovecot(t)
	pg := newPassgate(t, d, passgateOpts{})
	good, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(string) string
		mention string
	}{
		{"unknown key", func(s string) string { return strings.Replace(s, "[imap]\n", "[imap]\nlisten_sideways = true\n", 1) }, "listen_sideways"},
		{"bad login mode", func(s string) string { return strings.Replace(s, `login = "master"`, `login = "sideways"`, 1) }, "login"},
		{"bad duration", func(s string) string { return strings.Replace(s, `idle_timeout = "35m"`, `idle_timeout = "soon"`, 1) }, "idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(pg.ConfFile, []byte(tt.edit(string(good))), 0o600); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := pg.runErr(t, "", "check-config")
			if code == 0 || !strings.Contains(errOut, tt.mention) {
				t.Fatalf("check-config: exit %d, stderr %q; want a failure naming %q", code, errOut, tt.mention)
			}
		})
	}
}

// assertNoSecrets fails if any secret appears in passgate's output (logs).
func assertNoSecrets(t testing.TB, output string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, spaceless(s)} {
			if strings.Contains(output, form) {
				t.Errorf("passgate's output contains a secret")
			}
		}
	}
}
