package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testtool"
)

// editConfig rewrites passgate's configuration file with the replacements
// old, new, ...; each old string must be in the file.
func (pg *Passgate) editConfig(t testing.TB, oldnew ...string) {
	t.Helper()
	b, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(conf, oldnew[i]) {
			t.Fatalf("passgate config has no %q", oldnew[i])
		}
		conf = strings.Replace(conf, oldnew[i], oldnew[i+1], 1)
	}
	if err := os.WriteFile(pg.ConfFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitRefused waits until nothing accepts connections on address any more.
func waitRefused(t testing.TB, address string) {
	t.Helper()
	deadline := time.Now().Add(closeDeadline)
	for {
		c, err := net.DialTimeout("tcp", address, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections %v after SIGTERM", address, closeDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGTERMDuringTraffic stops passgate while a client idles through it:
// passgate stops accepting at once, lets the relayed session go on for
// limits.shutdown_grace, then says "* BYE" (the session is between two
// responses) and closes it, and exits 0 soon after.
func TestSIGTERMDuringTraffic(t *testing.T) {
	const grace = 4 * time.Second
	d := sharedDovecot(t)
	pg := newPassgate(t, d, passgateOpts{AllowCleartext: true})
	pg.editConfig(t, "[limits]\n", fmt.Sprintf("[limits]\nshutdown_grace = %q\n", grace.String()))
	pg.serve(t)
	a := newAccount(t, d, pg, false)

	c, _ := dialRaw(t, pg.IMAPAddr)
	if status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote(a.AppPass)); !strings.HasPrefix(status, "OK") {
		t.Fatalf("LOGIN: %s", status)
	}
	if status, _ := c.transact("SELECT INBOX"); !strings.HasPrefix(status, "OK") {
		t.Fatalf("SELECT: %s", status)
	}
	idle := func() string {
		tag := c.nextTag()
		c.writeLine(tag + " IDLE")
		if l := c.readLine(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("IDLE: got %q, want a continuation", l)
		}
		return tag
	}
	tag := idle()

	sent := time.Now()
	if err := pg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, pg.IMAPAddr)
	waitRefused(t, pg.IMAPSAddr)

	// The relayed session goes on: end IDLE, run a command through
	// passgate and Dovecot, idle again.
	c.writeLine("DONE")
	if status, _ := c.readTagged(tag); !strings.HasPrefix(status, "OK") {
		t.Fatalf("IDLE after SIGTERM: %s", status)
	}
	if status, _ := c.transact("NOOP"); !strings.HasPrefix(status, "OK") {
		t.Fatalf("NOOP after SIGTERM: %s", status)
	}
	idle()

	// At the end of the grace period: BYE, then the connection closes.
	var lines []string
	for {
		l, err := c.readLineErr()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("session still open %v after SIGTERM (read %q)", time.Since(sent), lines)
			}
			break
		}
		lines = append(lines, l)
	}
	closed := time.Since(sent)
	if len(lines) == 0 || lines[len(lines)-1] != "* BYE Server shutting down" {
		t.Errorf("the session ended with %q, want \"* BYE Server shutting down\" last", lines)
	}
	if closed < grace {
		t.Errorf("the session was closed %v after SIGTERM, before the grace period of %v ended", closed, grace)
	}
	select {
	case <-pg.done:
	case <-time.After(grace + closeDeadline):
		t.Fatalf("passgate still running %v after SIGTERM", grace+closeDeadline)
	}
	exited := time.Since(sent)
	if st := pg.cmd.ProcessState; !st.Success() {
		t.Errorf("passgate exited with %v, want 0", st)
	}
	t.Logf("SIGTERM -> session closed with BYE after %v, process exited after %v (grace %v)",
		closed.Round(time.Millisecond), exited.Round(time.Millisecond), grace)
	assertNoSecrets(t, pg.Output(), a.AppPass, a.Primary, masterSecret)
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends. Without root or mount(8) the test is
// skipped (failed on CI).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testtool.Missing(t, "mounting a tmpfs to fill needs root")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("mount -t tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full and returns a
// function that deletes it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for range 1 << 16 { // bounded: 256 MiB
		if _, err = f.Write(block); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreDiskFull puts the bbolt store on a tiny tmpfs and fills it: an
// app password created then is either stored whole or reported as failed
// (exit status, a clear message, no password printed), and the store
// opens afterwards with exactly the passwords that were reported created,
// each of which still logs in.
func TestStoreDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 256<<10)
	pg := newPassgate(t, &Dovecot{}, passgateOpts{AllowCleartext: true, Upstream: closedAddr(t)})
	pg.editConfig(t, `path = "`+filepath.Join(pg.Dir, "passgate.db")+`"`, `path = "`+filepath.Join(mnt, "passgate.db")+`"`)
	const user = "full@example.org"
	pg.addUser(t, user, "Primary Password 1", false)
	var created []appPassword
	for i := range 3 {
		created = append(created, pg.createAppPassword(t, user, fmt.Sprintf("before %d", i)))
	}

	free := fill(t, mnt)
	var stdout, stderr string
	code := 0
	for i := 0; i < 100 && code == 0; i++ { // bounded: each adds a record
		stdout, stderr, code = pg.runErr(t, "", "apppass", "create", user, "--name", fmt.Sprintf("full %d", i), "--json")
		if code == 0 {
			var p appPassword
			if err := json.Unmarshal([]byte(stdout), &p); err != nil || p.ID == "" {
				t.Fatalf("apppass create exited 0 but printed %q", stdout)
			}
			created = append(created, p)
		}
	}
	if code == 0 {
		t.Fatal("100 app passwords created on a full file system: none failed")
	}
	t.Logf("on the full disk: %d app passwords created, then exit %d: %s", len(created)-3, code, strings.TrimSpace(stderr))
	if !strings.Contains(stderr, "no space left on device") {
		t.Errorf("the failure does not say the disk is full: %q", stderr)
	}
	if strings.TrimSpace(stdout) != "" {
		t.Errorf("a failed create printed %q", stdout)
	}

	// While still full, the store can be read.
	if out, errOut, code := pg.runErr(t, "", "apppass", "list", user, "--json"); code != 0 {
		t.Logf("apppass list on the full disk: exit %d: %s%s", code, out, errOut)
	} else {
		checkListed(t, out, created)
	}

	free()
	checkListed(t, pg.run(t, "apppass", "list", user, "--json"), created)
	after := pg.createAppPassword(t, user, "after")
	created = append(created, after)
	checkListed(t, pg.run(t, "apppass", "list", user, "--json"), created)

	// Every password reported created still verifies: with the upstream
	// down, a verified login gets NO [UNAVAILABLE], a wrong one
	// AUTHENTICATIONFAILED.
	pg.serve(t)
	c, _ := dialRaw(t, pg.IMAPAddr)
	for _, p := range created {
		if status, _ := c.transact("LOGIN " + quote(user) + " " + quote(p.Password)); !strings.HasPrefix(status, "NO [UNAVAILABLE]") {
			t.Errorf("app password %s (%s) after the disk was full: %s, want it verified (NO [UNAVAILABLE] from the down upstream)", p.ID, p.Name, status)
		}
		c, _ = dialRaw(t, pg.IMAPAddr) // a fresh connection: failures are counted per connection
	}
	if status, _ := c.transact("LOGIN " + quote(user) + " " + quote("wrong-password-1")); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("a wrong password: %s, want NO [AUTHENTICATIONFAILED]", status)
	}
	assertNoSecrets(t, pg.Output(), after.Password, created[0].Password, "Primary Password 1")
}

// checkListed checks that `apppass list --json` output lists exactly the
// ids of want.
func checkListed(t *testing.T, out string, want []appPassword) {
	t.Helper()
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("apppass list --json: %v in %q", err, out)
	}
	var got, ids []string
	for _, p := range list {
		got = append(got, p.ID)
	}
	for _, p := range want {
		ids = append(ids, p.ID)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("the store lists %q, want exactly the created %q", got, ids)
	}
}

// closedAddr returns an address on 127.0.0.1 where nothing listens.
func closedAddr(t testing.TB) string { return addr(freePort(t)) }
