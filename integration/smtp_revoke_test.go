package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSMTPRevokeEndsSession revokes an app password while python smtplib
// holds an authenticated session open with it (after sending one message):
// passgate must end that session, so the client's next command fails, and
// leave the session of another app password alone.
func TestSMTPRevokeEndsSession(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	a := newAccount(t, d, g.Passgate, true)
	other := g.createAppPassword(t, a.User, "other device")

	survivor := dialSMTPTLS(t, g.SubmitsAddr, g.tlsConfig(t))
	survivor.transact("EHLO survivor.client.test")
	if r := survivor.transact("AUTH PLAIN " + saslPlain("", a.User, other.Password)); r.Code != 235 {
		t.Fatalf("AUTH with the other app password: %s", r)
	}

	rcpt := uniqueRcpt("revoke")
	msg := smtpMessage(a.User, rcpt, "before the revocation")
	env := append(pythonEnv(t, g, sendOpts{Via: viaStartTLS, Mech: "LOGIN", User: a.User, Secret: a.AppPass,
		From: a.User, To: []string{rcpt}, File: writeMessage(t, msg)}), "PG_HOLD=1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", pythonSMTP)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("python3: %v", err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"sent": true`) {
		cmd.Wait()
		t.Fatalf("smtplib did not send before the revocation: %q\n%s", lines.Text(), stderr.String())
	}
	checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)

	start := time.Now()
	g.run(t, "apppass", "revoke", a.User, a.AppID)
	returned := time.Now()
	var final string
	if lines.Scan() {
		final = lines.Text()
	}
	closed := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var r pythonSMTPResult
	if err := json.Unmarshal([]byte(final), &r); err != nil {
		t.Fatalf("smtplib output %q: %v\n%s", final, err, stderr.String())
	}
	// The held session must see the server close it (or say 421 first),
	// and the next command (NOOP) must fail.
	if r.Stage != "after close" || (r.Code != 0 && r.Code != 421) {
		t.Fatalf("smtplib after the revocation: %+v, want the session closed and NOOP failing", r)
	}
	t.Logf("session closed %v after `passgate apppass revoke` returned (%v after it started); smtplib saw code %d (0: closed without a reply), then NOOP: %q",
		closed.Sub(returned).Round(time.Millisecond), closed.Sub(start).Round(time.Millisecond), r.Code, r.Error)

	if r := survivor.transact("NOOP"); r.Code != 250 {
		t.Fatalf("the other app password's session: NOOP %s, want it still open", r)
	}
	if r := runSwaks(t, g, sendOpts{Via: viaTLS, Mech: "PLAIN", User: a.User, Secret: a.AppPass, From: a.User,
		To: []string{rcpt}, File: writeMessage(t, msg)}); r.Exit != 28 || !r.saw("535 5.7.8") {
		t.Fatalf("swaks with the revoked app password: exit %d, want 28 with 535 5.7.8:\n%s", r.Exit, r.Transcript)
	}
	assertNoSecrets(t, g.Output(), a.AppPass, other.Password, a.Primary, masterSecret)
}
