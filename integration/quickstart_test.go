package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
)

// TestREADMEQuickStart follows README.md's "Quick start with Dovecot" from
// scratch, taking the configuration and the commands from the README
// itself, so that the README cannot drift from what works: the toml block
// of step 2 (its paths moved to a temporary directory, its listeners and
// upstream addresses to this machine's ports, and the commented ca_file
// lines turned on, since the test Dovecot's certificate is from a private
// CA), the commands of step 3 in order (check-config, serve, user add,
// apppass create), then a real client reads mail (python3 imaplib, LOGIN
// after STARTTLS on the 143 listener) and sends as alice@<default_domain>
// (swaks, AUTH PLAIN after STARTTLS on the 587 listener) with the printed
// app password, as Alice would type it into Outlook.
func TestREADMEQuickStart(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	requireTool(t, "swaks")
	conf, commands := readmeQuickStart(t)
	d := startDovecot(t)
	sink := startSink(t, d.RelayAddr)

	// Step 1 on the test Dovecot: the master user "passgate" the README
	// names, and a user whose login name is "alice" (no domain).
	const alicePrimary = "alice-primary-secret"
	appendFile(t, filepath.Join(d.Dir, "master-users"), "passgate:{PLAIN}"+masterSecret+"\n")
	appendFile(t, filepath.Join(d.Dir, "users"), "alice:{PLAIN}"+alicePrimary+"\n")
	waitDovecotUser(t, d, "alice", "passgate")

	// Step 2: /etc/passgate and /var/lib/passgate become directories of
	// the test's; the listeners and the upstreams become ports here.
	dir := t.TempDir()
	etc, lib := filepath.Join(dir, "etc"), filepath.Join(dir, "lib")
	for _, p := range []string{etc, lib} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := testcert.Write(t, etc, "passgate-")
	for from, to := range map[string]string{cert: "fullchain.pem", key: "privkey.pem", d.CertFile: "internal-ca.pem"} {
		copyFile(t, from, filepath.Join(etc, to))
	}
	if err := os.WriteFile(filepath.Join(etc, "master-secret"), []byte(masterSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := &Passgate{
		Dir: dir, ConfFile: filepath.Join(etc, "passgate.toml"), CertFile: filepath.Join(etc, "fullchain.pem"),
		IMAPAddr: addr(freePort(t)), IMAPSAddr: addr(freePort(t)), bin: passgateBinary(t), out: new(testlog.Buffer),
	}
	g := &smtpGate{Passgate: pg, SubmitAddr: addr(freePort(t)), SubmitsAddr: addr(freePort(t))}
	paths := strings.NewReplacer("/etc/passgate/", etc+"/", "/var/lib/passgate/", lib+"/")
	conf = paths.Replace(conf)
	conf = strings.NewReplacer(
		`"0.0.0.0:143"`, `"`+g.IMAPAddr+`"`, `"0.0.0.0:993"`, `"`+g.IMAPSAddr+`"`,
		`"0.0.0.0:587"`, `"`+g.SubmitAddr+`"`, `"0.0.0.0:465"`, `"`+g.SubmitsAddr+`"`,
		`"mail.internal:143"`, `"`+d.IMAPAddr+`"`, `"mail.internal:587"`, `"`+d.SubmitAddr+`"`,
	).Replace(conf)
	conf = regexp.MustCompile(`(?m)^# (ca_file = "[^"]*").*$`).ReplaceAllString(conf, "$1")
	for _, unmapped := range []string{"0.0.0.0:", "mail.internal", "/etc/passgate", "/var/lib/passgate"} {
		if strings.Contains(conf, unmapped) {
			t.Fatalf("the README's configuration names %q, which this test does not map to the test machine:\n%s", unmapped, conf)
		}
	}
	if err := os.WriteFile(pg.ConfFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("the README's configuration, on this machine:\n%s", conf)

	// Step 3, command by command.
	var appPassword string
	for _, line := range commands {
		args := strings.Fields(paths.Replace(line))
		if args[0] != "passgate" {
			t.Fatalf("README step 3 runs %q, not passgate", line)
		}
		args = args[1:]
		if args[len(args)-1] == "&" {
			if want := []string{"serve", "--config", pg.ConfFile}; strings.Join(args[:len(args)-1], " ") != strings.Join(want, " ") {
				t.Fatalf("README step 3 starts %q in the background; this test knows how to wait for serve only", line)
			}
			g.start(t)
			continue
		}
		stdout, stderr, err := runPassgate(pg, args...)
		if err != nil {
			t.Fatalf("README step 3: %s: %v\nstdout: %s\nstderr: %s", line, err, stdout, stderr)
		}
		t.Logf("$ %s\n%s%s", line, stdout, stderr)
		if args[0] == "apppass" {
			appPassword = regexp.MustCompile(`(?m)^\s+([a-z0-9]{4} [a-z0-9]{4} [a-z0-9]{4} [a-z0-9]{4})\s*$`).FindStringSubmatch(stdout)[1]
			leaks.secret(appPassword)
		}
		if args[0] == "check-config" && strings.Count(stdout, "master login as alice works") != 2 {
			t.Errorf("check-config did not log in as the master user to alice through both upstreams:\n%s%s", stdout, stderr)
		}
	}
	if appPassword == "" {
		t.Fatal("README step 3 created no app password")
	}

	// Alice reads her mail: imaplib, STARTTLS, LOGIN with the password as
	// printed (the spaces kept).
	d.deliver(t, "alice", testMessage("alice@example.org", "quick start", "hello from the README"))
	if r := runPython(t, pg, viaStartTLS, "login", "alice", appPassword); !r.OK || r.Exists != 1 {
		t.Fatalf("imaplib as alice with the app password: %+v", r)
	}
	// And sends as alice@example.org (smtp.default_domain), typing the
	// password without the spaces and in upper case.
	rcpt := uniqueRcpt("quickstart")
	msg := smtpMessage("alice@example.org", rcpt, "sent after the quick start")
	typed := strings.ToUpper(strings.ReplaceAll(appPassword, " ", ""))
	if r := runSwaks(t, g, sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: "alice", Secret: typed,
		From: "alice@example.org", To: []string{rcpt}, File: writeMessage(t, msg)}); r.Exit != 0 {
		t.Fatalf("swaks as alice@example.org: exit %d\n%s", r.Exit, r.Transcript)
	}
	checkRelayed(t, sink.take(t, rcpt), msg, "alice@example.org", rcpt)
}

// readmeQuickStart returns the toml block of the README's Quick start and
// the passgate commands of its sh block, one per line.
func readmeQuickStart(t *testing.T) (conf string, commands []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Quick start with Dovecot\n")
	if !ok {
		t.Fatal(`README.md has no section "Quick start with Dovecot"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```(toml|sh)\n(.*?)\n *```").FindAllStringSubmatch(section, -1)
	for _, b := range blocks {
		body := dedent(b[2])
		switch {
		case b[1] == "toml" && conf == "":
			conf = body + "\n"
		case b[1] == "sh" && commands == nil:
			for _, l := range strings.Split(body, "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					commands = append(commands, l)
				}
			}
		}
	}
	if conf == "" || len(commands) == 0 {
		t.Fatalf("README's Quick start lacks a toml or an sh block: %d blocks", len(blocks))
	}
	return conf, commands
}

// dedent removes the indentation of the block's first line from every line
// (the README's blocks sit in a numbered list).
func dedent(s string) string {
	indent := s[:len(s)-len(strings.TrimLeft(s, " "))]
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}

// runPassgate runs the passgate binary with args exactly as given.
func runPassgate(pg *Passgate, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pg.bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	leaks.output(stringOutput(e.String()))
	return o.String(), e.String(), err
}

// waitDovecotUser waits until Dovecot, which re-reads a changed
// passwd-file at most once a second, lets master log in as user.
func waitDovecotUser(t *testing.T, d *Dovecot, user, master string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, _ := dialRaw(t, d.IMAPAddr)
		c.forwardIP("192.0.2.201") // a failure must not penalise 127.0.0.1
		status, _ := c.transact("AUTHENTICATE PLAIN " + saslPlain(user, master, masterSecret))
		c.transact("LOGOUT")
		if strings.HasPrefix(status, "OK") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dovecot does not let %s log in as %s: %q", master, user, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("append to %s: %v", path, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o600)
	}
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
