package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store/bolt"
)

// backdate creates app passwords in the store of cfg as if made days ago.
func backdate(t *testing.T, cfg, user string, daysAgo int, names ...string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(filepath.Dir(cfg), "passgate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := seedService(db)
	svc.Now = func() time.Time { return time.Now().AddDate(0, 0, -daysAgo) }
	for _, n := range names {
		if _, err := svc.CreateAppPassword(context.Background(), cliActor(), user, n, account.AppPasswordOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCLIStaleAndRetire(t *testing.T) {
	cfg := withAuthn(t, `unused_after = "90d"`)
	mustCLI(t, "", "user", "add", "alice@example.org", "--config", cfg)
	mustCLI(t, "", "user", "add", "bob@example.org", "--config", cfg)
	backdate(t, cfg, "alice@example.org", 100, "Old phone")
	backdate(t, cfg, "bob@example.org", 70, "Laptop") // removal in 20 days: not yet warned
	backdate(t, cfg, "bob@example.org", 80, "Tablet") // warned: removal in 10 days
	mustCLI(t, "", "apppass", "create", "alice@example.org", "--name", "New", "--config", cfg)

	var stale []account.StaleAppPassword
	out := mustCLI(t, "", "apppass", "stale", "--older-than", "60d", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(out), &stale); err != nil {
		t.Fatalf("stale --json printed %q: %v", out, err)
	}
	var got []string
	for _, p := range stale {
		got = append(got, p.Username+"/"+p.Name)
	}
	if strings.Join(got, " ") != "alice@example.org/Old phone bob@example.org/Tablet bob@example.org/Laptop" {
		t.Errorf("stale --older-than 60d: %v", got)
	}
	if out := mustCLI(t, "", "apppass", "stale", "--older-than", "75d", "--config", cfg); !strings.Contains(out, "Tablet") ||
		strings.Contains(out, "Laptop") || !strings.Contains(out, "REMOVAL") {
		t.Errorf("stale --older-than 75d:\n%s", out)
	}

	out = mustCLI(t, "", "apppass", "retire", "--dry-run", "--config", cfg)
	if !strings.Contains(out, "would retire 1 unused app passwords, would warn about 1") || !strings.Contains(out, "Old phone") {
		t.Errorf("retire --dry-run:\n%s", out)
	}
	if list := mustCLI(t, "", "apppass", "list", "alice@example.org", "--config", cfg); !strings.Contains(list, "Old phone") {
		t.Fatalf("the dry run removed a password:\n%s", list)
	}
	out = mustCLI(t, "", "apppass", "retire", "--config", cfg)
	if !strings.Contains(out, "retired 1 unused app passwords, warned about 1") {
		t.Errorf("retire:\n%s", out)
	}
	if list := mustCLI(t, "", "apppass", "list", "alice@example.org", "--config", cfg); strings.Contains(list, "Old phone") ||
		!strings.Contains(list, "New") {
		t.Errorf("after retire, alice has:\n%s", list)
	}
	if act := mustCLI(t, "", "user", "activity", "alice@example.org", "--config", cfg); !strings.Contains(act, account.ResultAppPasswordRetired) {
		t.Errorf("alice's activity has no retirement:\n%s", act)
	}
	if act := mustCLI(t, "", "user", "activity", "bob@example.org", "--config", cfg); !strings.Contains(act, account.ResultAppPasswordRetireWarning) {
		t.Errorf("bob's activity has no warning:\n%s", act)
	}
	if _, _, err := cli(t, "", "apppass", "stale", "--older-than", "soon", "--config", cfg); err == nil ||
		!strings.Contains(err.Error(), "--older-than") {
		t.Errorf("bad --older-than: %v", err)
	}
	// With the policy off, retire says so.
	off := testConfig(t)
	if _, _, err := cli(t, "", "apppass", "retire", "--config", off); err == nil || !strings.Contains(err.Error(), "authn.unused_after") {
		t.Errorf("retire with the policy off: %v", err)
	}
}
