package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testslapd"
)

const testSuffix = "dc=example,dc=org"

// ldapPeople are the directory users of the CLI tests.
var ldapPeople = []testslapd.Person{
	{UID: "alice", Mail: "alice@example.org", Password: "alice-ldap-pw"},
	{UID: "bob", Mail: "bob@example.org", Password: "bob-ldap-pw", MFA: true},
	{UID: "carol", Mail: "carol@example.org", Password: "carol-ldap-pw", Admin: true},
	{UID: "dave", Mail: "dave@example.org", Password: "dave-ldap-pw", Disabled: true},
}

// ldapConfigLines is the [directory] of a passgate in front of s, as the
// README's OpenLDAP example configures it.
func ldapConfigLines(s *testslapd.Server) string {
	return fmt.Sprintf(`[directory]
kind = "ldap"
default_domain = "example.org"
[directory.ldap]
preset = "openldap"
url = %q
bind_dn = %q
bind_password = %q
base_dn = "ou=people,%s"
user_filter = "(&(objectClass=inetOrgPerson)(|(mail={user})(uid={local})))"
mfa_group = %q
admin_group = %q
disabled_group = %q
`, s.URL, testslapd.ServiceDN(testSuffix), testslapd.ServicePassword, testSuffix,
		testslapd.GroupDN(testSuffix, "mfa"), testslapd.GroupDN(testSuffix, "admins"), testslapd.GroupDN(testSuffix, "disabled"))
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryTestCommand: `passgate directory test` prints what a real
// slapd says about a user, with and without a password, and fails (after
// printing) when the user is unknown, the password wrong or the account
// disabled. The password never appears in the output.
func TestDirectoryTestCommand(t *testing.T) {
	s := testslapd.Start(t, testslapd.Options{Suffix: testSuffix, LDIF: testslapd.People(testSuffix, ldapPeople...)})
	cfg := testConfig(t)
	appendFile(t, cfg, ldapConfigLines(s))

	out := mustCLI(t, "alice-ldap-pw\n", "directory", "test", "Alice", "--config", cfg)
	for _, want := range [][2]string{{"directory", "ldap (" + s.URL + ")"}, {"found", "yes"}, {"username", "alice@example.org"},
		{"id", "uid=alice,ou=people," + testSuffix}, {"disabled", "no"}, {"mfa required", "no"}, {"admin", "no"},
		{"addresses", "alice@example.org"}, {"password", "right"}} {
		if got := field(out, want[0]); got != want[1] {
			t.Errorf("directory test alice: %s is %q, want %q:\n%s", want[0], got, want[1], out)
		}
	}
	if took := field(out, "took"); !regexp.MustCompile(`^lookup [0-9.]+[mµ]?s, password [0-9.]+[mµ]?s$`).MatchString(took) {
		t.Errorf("directory test alice: took %q", took)
	}

	var r struct {
		Found       string `json:"found"`
		Username    string `json:"username"`
		MFARequired bool   `json:"mfa_required"`
		Admin       bool   `json:"admin"`
		Password    string `json:"password"`
		LookupNS    int64  `json:"lookup_ns"`
		PasswordNS  int64  `json:"password_ns"`
	}
	for _, tt := range []struct {
		login, stdin   string
		mfa, admin, ok bool
		password       string
	}{
		{"bob", "", true, false, true, "not tested"},
		{"carol@example.org", "carol-ldap-pw\n", false, true, true, "right"},
		{"alice", "Wr0ng-Passw0rd\n", false, false, false, "refused (wrong password, or no such user)"},
		{"dave", "dave-ldap-pw\n", false, false, false, "right, but the account is disabled"},
	} {
		out, _, err := cli(t, tt.stdin, "directory", "test", tt.login, "--json", "--config", cfg)
		if (err == nil) != tt.ok {
			t.Errorf("directory test %s: error %v, want ok=%v", tt.login, err, tt.ok)
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("directory test %s --json printed %q: %v", tt.login, out, err)
		}
		if r.Found != "yes" || r.MFARequired != tt.mfa || r.Admin != tt.admin || r.Password != tt.password || r.LookupNS <= 0 ||
			(tt.stdin != "") != (r.PasswordNS > 0) {
			t.Errorf("directory test %s = %+v", tt.login, r)
		}
		if tt.stdin != "" && strings.Contains(out, strings.TrimSpace(tt.stdin)) {
			t.Errorf("the output shows the password: %s", out)
		}
	}

	out, _, err := cli(t, "", "directory", "test", "nobody", "--config", cfg)
	if err == nil || field(out, "found") != "no" {
		t.Errorf("directory test nobody: %v\n%s", err, out)
	}
}

// TestDirectoryTestCommandStore: with kind store the command asks
// passgate's own accounts.
func TestDirectoryTestCommandStore(t *testing.T) {
	cfg := testConfig(t)
	mustCLI(t, "erin's password\n", "user", "add", "erin@example.org", "--password-stdin", "--config", cfg)
	out := mustCLI(t, "erin's password\n", "directory", "test", "erin@example.org", "--config", cfg)
	if field(out, "directory") != "store (store bolt)" || field(out, "password") != "right" {
		t.Errorf("directory test with kind store:\n%s", out)
	}
}

// TestCheckConfigDirectory: check-config asks the directory, and names it
// when it cannot be reached.
func TestCheckConfigDirectory(t *testing.T) {
	s := testslapd.Start(t, testslapd.Options{Suffix: testSuffix, LDIF: testslapd.People(testSuffix, ldapPeople...)})
	cfg := testConfig(t)
	appendFile(t, cfg, ldapConfigLines(s))
	// The upstream of testConfig is not reachable: the directory is
	// checked before it.
	out, _, err := cli(t, "", "check-config", "--config", cfg)
	if !strings.Contains(out, "directory ldap "+s.URL+": reachable, answers") {
		t.Errorf("check-config: %v\n%s", err, out)
	}
	s.Stop()
	_, _, err = cli(t, "", "check-config", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "directory ldap "+s.URL) || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("check-config with slapd stopped: %v", err)
	}
}

// field returns the value printed after "name:" in the output of
// `directory test`.
func field(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
