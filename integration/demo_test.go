package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoCurlCommandListsInbox runs the README's first command the way a
// newcomer does: `passgate demo`, then the curl command it prints, run by a
// shell exactly as printed.
func TestDemoCurlCommandListsInbox(t *testing.T) {
	requireTool(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startDemo(t, ctx)
	alertCmd := b.field(t, "the alert command", `(?m)^\s+(curl -v .*)$`)
	manage := b.field(t, "the management command", `(?m)^\s+passgate (apppass list .*)$`)

	// Send a message through the demo's SMTP first: the listing must show it.
	if got, err := exec.CommandContext(ctx, "sh", "-c", b.sendCmd+" --max-time 20").CombinedOutput(); err != nil {
		t.Fatalf("the printed SMTP command failed: %v\n%s\n%s", err, b.sendCmd, got)
	}
	got, err := exec.CommandContext(ctx, "sh", "-c", b.listCmd+" --max-time 20").CombinedOutput()
	if err != nil {
		t.Fatalf("the printed curl command failed: %v\n%s\n%s", err, b.listCmd, got)
	}
	for _, subject := range []string{"Welcome to passgate", "Your app password works", "Try IDLE and MOVE", "Hello through passgate"} {
		if !strings.Contains(string(got), subject) {
			t.Errorf("inbox listing lacks %q:\n%s", subject, got)
		}
	}

	// The primary password is refused with the alert, as the banner says.
	got, err = exec.CommandContext(ctx, "sh", "-c", alertCmd+" --max-time 20").CombinedOutput()
	if err == nil || !strings.Contains(string(got), "NO [ALERT] Application password required: create one at http://127.0.0.1:") {
		t.Fatalf("primary password: err=%v, want a login refused with the alert:\n%s", err, got)
	}

	// The management command it prints works while the demo runs.
	list, err := exec.CommandContext(ctx, "sh", "-c", passgateBinary(t)+" "+manage).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "Outlook") || !strings.Contains(string(list), "127.0.0.1") {
		t.Fatalf("%s: err=%v, want the Outlook password last used from 127.0.0.1:\n%s", manage, err, list)
	}
}
