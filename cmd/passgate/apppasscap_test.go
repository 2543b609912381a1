package main

import (
	"os"
	"strings"
	"testing"
)

// withAuthn returns a copy of the test config with extra [authn] keys.
func withAuthn(t *testing.T, keys string) string {
	t.Helper()
	path := testConfig(t)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(text), "[authn]\n", "[authn]\n"+keys+"\n", 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// One app password beyond authn.max_app_passwords is refused with an error
// naming the field and the key (main exits non-zero on any error).
func TestCLIAppPasswordCap(t *testing.T) {
	cfg := withAuthn(t, "max_app_passwords = 2")
	mustCLI(t, "", "user", "add", "alice@example.org", "--config", cfg)
	mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Phone", "--config", cfg)
	mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "Laptop", "--config", cfg)
	out, _, err := cli(t, "", "apppass", "create", "alice@example.org", "--name", "Tablet", "--config", cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "username: ") || !strings.Contains(err.Error(), "authn.max_app_passwords") ||
		!strings.Contains(err.Error(), "2 app passwords") {
		t.Fatalf("third create: err = %v, want a username error naming authn.max_app_passwords and 2", err)
	}
	if out != "" {
		t.Errorf("refused create printed %q", out)
	}
	if list := mustCLI(t, "", "apppass", "list", "alice@example.org", "--config", cfg); strings.Contains(list, "Tablet") {
		t.Errorf("the refused password is listed:\n%s", list)
	}
}
