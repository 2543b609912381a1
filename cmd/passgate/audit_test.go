package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/user"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// enrolled is the account whose second factor auditedChanges resets:
// a reset needs an enrolled authenticator, which the CLI does not enrol.
const enrolled = "carol@example.org"

// auditedChanges runs one CLI command per kind of account change and
// returns the audit results each must leave in alice's activity, in
// order. The second factor it resets is enrolled's (enrolBeforeServe);
// the reset must leave enrolled's activity "reset-mfa".
func auditedChanges(t *testing.T, cfg string) []string {
	t.Helper()
	mustCLI(t, "", "user", "reset-mfa", enrolled, "--config", cfg)
	steps := []struct {
		stdin  string
		args   []string
		result string
	}{
		{"", []string{"user", "add", "alice@example.org"}, "user-created"},
		{"", []string{"user", "mfa", "alice@example.org", "on"}, "require-mfa"},
		{"", []string{"user", "mfa", "alice@example.org", "off"}, "mfa-off"},
		{"", []string{"user", "language", "alice@example.org", "fr"}, "language-set"},
		{"", []string{"user", "disable", "alice@example.org"}, "disable"},
		{"", []string{"user", "enable", "alice@example.org"}, "enable"},
		{"", []string{"user", "admin", "alice@example.org", "on"}, "admin-on"},
		{"", []string{"user", "admin", "alice@example.org", "off"}, "admin-off"},
		{"", []string{"user", "alias", "add", "alice@example.org", "sales@example.org"}, "alias-added"},
		{"", []string{"user", "alias", "remove", "alice@example.org", "sales@example.org"}, "alias-removed"},
		{"", []string{"apppass", "create", "alice@example.org", "--name", "Phone"}, "app-password-created"},
		{"", []string{"apppass", "revoke", "alice@example.org", "Phone"}, "app-password-revoked"},
		{"", []string{"apppass", "create", "alice@example.org", "--name", "Laptop"}, "app-password-created"},
		{"", []string{"apppass", "revoke-all", "alice@example.org"}, "delete-app-passwords"},
		{"a new primary password\n", []string{"user", "password", "alice@example.org", "--password-stdin"}, "password-changed"},
	}
	var want []string
	for _, s := range steps {
		mustCLI(t, s.stdin, append(s.args, "--config", cfg)...)
		want = append(want, s.result)
	}
	return want
}

// checkAudited reads the activity of user through the CLI and checks that it holds exactly the results in want (oldest first), each
// by actor.
func checkAudited(t *testing.T, cfg, user string, want []string, actor string) {
	t.Helper()
	var recs []struct {
		Protocol, Result, Actor string
		AppPasswordName         string `json:"app_password_name"`
	}
	out := mustCLI(t, "", "user", "activity", user, "-n", "50", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("user activity --json printed %q: %v", out, err)
	}
	var got []string
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		got = append(got, r.Result)
		if r.Actor != actor || r.Protocol != "admin" {
			t.Errorf("record %q: actor %q protocol %q, want actor %q protocol admin", r.Result, r.Actor, r.Protocol, actor)
		}
		if strings.HasPrefix(r.Result, "app-password-") && r.AppPasswordName == "" {
			t.Errorf("record %q does not name the app password", r.Result)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("audited changes:\n got  %q\n want %q", got, want)
	}
}

func unixUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// Every change the CLI makes on the store file is audited with the Unix
// user who ran it.
func TestCLIChangesAreAuditedWithTheUnixUser(t *testing.T) {
	cfg := portalConfig(t, 50)
	enrolBeforeServe(t, cfg, enrolled)
	want := auditedChanges(t, cfg)
	checkAudited(t, cfg, "alice@example.org", want, "cli:"+unixUser(t))
	checkAudited(t, cfg, enrolled, []string{"reset-mfa"}, "cli:"+unixUser(t))
}

// Through a running server's control socket, the actor is the socket's
// peer, which the server looks up itself.
func TestControlSocketChangesAreAuditedWithThePeer(t *testing.T) {
	path := portalConfig(t, 50)
	enrolBeforeServe(t, path, enrolled)
	serveConfig(t, path)
	want := auditedChanges(t, path)
	checkAudited(t, path, "alice@example.org", want, "control:"+unixUser(t))
	checkAudited(t, path, enrolled, []string{"reset-mfa"}, "control:"+unixUser(t))
}

// enrolBeforeServe writes user into the store file of the config at path
// (which needs a portal key) with an authenticator enrolled by the
// portal's EnrolTOTP, as `passgate demo` enrols its user: the CLI enrols
// none, and while serve runs it holds the file. The account is written
// straight to the store, so it has no activity of its own.
func enrolBeforeServe(t *testing.T, path, user string) {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateAccount(t.Context(), store.Account{Username: user, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	if _, _, err := newPortal(cfg, &core{st: db, v: newVerifier(cfg, db, quiet)}, quiet).EnrolTOTP(t.Context(), user); err != nil {
		t.Fatal(err)
	}
}

// A client of the control socket cannot name the actor: fields it adds
// are ignored or refused, and the record names the socket's peer.
func TestControlSocketIgnoresAClaimedActor(t *testing.T) {
	path := testConfig(t)
	serveConfig(t, path)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	send := func(req string) (reply struct {
		Result json.RawMessage
		Error  any
	}) {
		t.Helper()
		c, err := net.DialTimeout("unix", cfg.Control.Socket, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, req+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := json.NewDecoder(c).Decode(&reply); err != nil {
			t.Fatalf("reply to %s: %v", req, err)
		}
		return reply
	}
	r := send(`{"id":1,"method":"Accounts.Call","params":[{"Op":"CreateUser","Args":[{"Username":"eve@example.org"}],"Actor":{"Door":"portal","Name":"admin@example.org"},"Who":"portal:admin@example.org"}]}`)
	if r.Error != nil {
		t.Fatalf("CreateUser: %v", r.Error)
	}
	r = send(`{"id":2,"method":"Accounts.Call","params":[{"Op":"SetAdmin","Args":[{"Door":"portal","Name":"admin@example.org"},"eve@example.org",true]}]}`)
	if r.Error == nil {
		t.Error("SetAdmin with an actor among the arguments succeeded")
	}
	r = send(`{"id":3,"method":"Accounts.Call","params":[{"Op":"CreateAppPassword","Args":["eve@example.org","x",{"Actor":"portal:admin@example.org"}]}]}`)
	if r.Error == nil || !strings.Contains(fmt.Sprint(r.Error), "Actor") {
		t.Errorf("CreateAppPassword with an actor in its options: error %v, want it refused", r.Error)
	}
	checkAudited(t, path, "eve@example.org", []string{"user-created"}, "control:"+unixUser(t))
}

// `user reset-mfa` of an account that never enrolled an authenticator is
// refused, on the store file and through a running server's control
// socket alike: an error naming the username field (main exits 1),
// nothing printed as done, nothing in the account's activity. An unknown
// user is still "no account".
func TestCLIResetMFAWithoutAuthenticatorIsRefused(t *testing.T) {
	for _, door := range []string{"store file", "control socket"} {
		t.Run(door, func(t *testing.T) {
			cfg := testConfig(t)
			if door == "control socket" {
				serveConfig(t, cfg)
			}
			mustCLI(t, "", "user", "add", "alice@example.org", "--mfa", "--config", cfg)
			out, _, err := cli(t, "", "user", "reset-mfa", "alice@example.org", "--config", cfg)
			const want = "username: alice@example.org has no authenticator enrolled: nothing to reset"
			var ue usageError
			if err == nil || err.Error() != want || errors.As(err, &ue) {
				t.Errorf("reset-mfa of a never-enrolled account: error %v, want %q (exit 1)", err, want)
			}
			if out != "" {
				t.Errorf("reset-mfa refused, but printed %q", out)
			}
			checkAudited(t, cfg, "alice@example.org", []string{"user-created"}, actorOf(t, door))

			_, _, err = cli(t, "", "user", "reset-mfa", "nobody@example.org", "--config", cfg)
			if want := `username: no account "nobody@example.org"`; err == nil || err.Error() != want {
				t.Errorf("reset-mfa of an unknown user: error %v, want %q", err, want)
			}
		})
	}
}

// actorOf is the actor the CLI's changes are audited with through door.
func actorOf(t *testing.T, door string) string {
	t.Helper()
	if door == "control socket" {
		return "control:" + unixUser(t)
	}
	return "cli:" + unixUser(t)
}
