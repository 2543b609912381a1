package integration

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testlog"
)

// TestDemoCurlCommandListsInbox runs the README's first command the way a
// newcomer does: `passgate demo`, then the curl command it prints, run by a
// shell exactly as printed.
func TestDemoCurlCommandListsInbox(t *testing.T) {
	requireTool(t, "curl")
	bin := passgateBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--listen-imap", "127.0.0.1:0", "--listen-smtp", "127.0.0.1:0", "--listen-portal", "127.0.0.1:0")
	// Stop it as Ctrl-C would, so that it deletes its temporary files.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr.String())
		}
	})

	// Read the banner up to the line that ends it.
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	out := banner.String()
	listCmd := regexp.MustCompile(`(?m)^\s+(curl --login-options .*ENVELOPE')$`).FindStringSubmatch(out)
	alertCmd := regexp.MustCompile(`(?m)^\s+(curl -v .*)$`).FindStringSubmatch(out)
	if listCmd == nil || alertCmd == nil {
		t.Fatalf("demo did not print the curl commands:\n%s", out)
	}

	// Send a message through the demo's SMTP first: the listing must show it.
	sendCmd := regexp.MustCompile(`(?m)^\s+(printf .*smtp://.*)$`).FindStringSubmatch(out)
	if sendCmd == nil {
		t.Fatalf("demo did not print the SMTP command:\n%s", out)
	}
	if got, err := exec.CommandContext(ctx, "sh", "-c", sendCmd[1]+" --max-time 20").CombinedOutput(); err != nil {
		t.Fatalf("the printed SMTP command failed: %v\n%s\n%s", err, sendCmd[1], got)
	}

	got, err := exec.CommandContext(ctx, "sh", "-c", listCmd[1]+" --max-time 20").CombinedOutput()
	if err != nil {
		t.Fatalf("the printed curl command failed: %v\n%s\n%s", err, listCmd[1], got)
	}
	for _, subject := range []string{"Welcome to passgate", "Your app password works", "Try IDLE and MOVE", "Hello through passgate"} {
		if !strings.Contains(string(got), subject) {
			t.Errorf("inbox listing lacks %q:\n%s", subject, got)
		}
	}

	// The primary password is refused with the alert, as the banner says.
	got, err = exec.CommandContext(ctx, "sh", "-c", alertCmd[1]+" --max-time 20").CombinedOutput()
	if err == nil || !strings.Contains(string(got), "NO [ALERT] Application password required: create one at http://127.0.0.1:") {
		t.Fatalf("primary password: err=%v, want a login refused with the alert:\n%s", err, got)
	}

	// The management command it prints works while the demo runs.
	manage := regexp.MustCompile(`(?m)^\s+passgate (apppass list .*)$`).FindStringSubmatch(out)
	if manage == nil {
		t.Fatalf("demo did not print the management command:\n%s", out)
	}
	list, err := exec.CommandContext(ctx, "sh", "-c", bin+" "+manage[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "Outlook") || !strings.Contains(string(list), "127.0.0.1") {
		t.Fatalf("%s: err=%v, want the Outlook password last used from 127.0.0.1:\n%s", manage[1], err, list)
	}
}
