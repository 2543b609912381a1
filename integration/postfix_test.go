package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testtool"
)

// Postfix is a private Postfix instance: its own configuration, queue and
// log under a temporary directory, one smtpd on 127.0.0.1 that lets
// loopback clients use XCLIENT (smtpd_authorized_xclient_hosts) and relays
// what an XCLIENT LOGIN= session submits to a sink (relayhost). Its master
// daemon runs in the foreground as a child of the test; the system's
// Postfix configuration (Debian installs it as "No configuration") is not
// used.
type Postfix struct {
	Dir      string
	SMTPAddr string
	LogFile  string

	cmd    *exec.Cmd
	exited chan struct{}
	out    *testlog.Buffer
}

const postfixMain = `# written by passgate's integration tests
compatibility_level = 3.6
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
maillog_file = {{.Dir}}/maillog
maillog_file_prefixes = {{.Dir}}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = example.org
myorigin = $mydomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
{{- if .LMTPPort}}
# Every message goes into Dovecot's mailboxes over LMTP; loopback clients
# (Dovecot submission's relay) may send without XCLIENT.
default_transport = lmtp:inet:127.0.0.1:{{.LMTPPort}}
mynetworks = 127.0.0.0/8
{{- else}}
mynetworks =
relayhost = [127.0.0.1]:{{.RelayPort}}
{{- end}}
smtp_tls_security_level = none
smtpd_tls_security_level = none
# XCLIENT LOGIN= sets the SASL login of the session; Postfix honours
# permit_sasl_authenticated only with SASL enabled.
smtpd_sasl_auth_enable = yes
smtpd_sasl_authenticated_header = yes
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
message_size_limit = 62914560
`

const postfixMaster = `# written by passgate's integration tests
127.0.0.1:{{.SMTPPort}} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// requirePostfix checks for the postfix command and the postfix user that
// Debian's package creates, and root (Postfix's master runs as root).
func requirePostfix(t testing.TB) string {
	t.Helper()
	postfix := requireTool(t, "postfix")
	if _, err := user.Lookup("postfix"); err != nil {
		testtool.Missing(t, fmt.Sprintf("no postfix user (install the Debian package postfix): %v", err))
	}
	if os.Geteuid() != 0 {
		testtool.Missing(t, "a private Postfix must run as root")
	}
	return postfix
}

// startPostfix starts a private Postfix relaying to relayAddr, stopped when
// the test ends; its log is printed if the test failed.
func startPostfix(t testing.TB, relayAddr string) *Postfix {
	t.Helper()
	return startPostfixWith(t, postfixOpts{Relay: relayAddr})
}

// postfixOpts say where a private Postfix listens and delivers.
type postfixOpts struct {
	// Listen is smtpd's address; "" a free port of 127.0.0.1.
	Listen string
	// Relay is the SMTP server every message is relayed to, unless LMTP
	// is set: then every message goes into Dovecot's mailboxes through
	// its LMTP service at that address.
	Relay, LMTP string
}

// startPostfixWith starts a private Postfix as o says.
func startPostfixWith(t testing.TB, o postfixOpts) *Postfix {
	t.Helper()
	postfix := requirePostfix(t)
	dir, err := os.MkdirTemp("", "pg-postfix-")
	if err != nil {
		t.Fatalf("postfix dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Postfix's unprivileged daemons must reach the queue under dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("postfix dir: %v", err)
	}
	listen := o.Listen
	if listen == "" {
		listen = addr(freePort(t))
	}
	p := &Postfix{Dir: dir, SMTPAddr: listen, LogFile: filepath.Join(dir, "maillog"),
		exited: make(chan struct{}), out: new(testlog.Buffer)}
	vars := map[string]any{"Dir": dir, "LMTPPort": "", "RelayPort": ""}
	_, vars["SMTPPort"] = splitAddr(t, p.SMTPAddr)
	if o.LMTP != "" {
		_, vars["LMTPPort"] = splitAddr(t, o.LMTP)
	} else {
		_, vars["RelayPort"] = splitAddr(t, o.Relay)
	}
	for name, text := range map[string]string{"main.cf": postfixMain, "master.cf": postfixMaster} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("postfix %s: %v", name, err)
		}
		err = template.Must(template.New(name).Parse(text)).Execute(f, vars)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("postfix %s: %v", name, err)
		}
	}
	// The queue (whose subdirectories postfix check creates) and the data
	// directory, where the master keeps its lock, owned by postfix.
	for _, sub := range []string{"queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("postfix %s directory: %v", sub, err)
		}
	}
	pf, _ := user.Lookup("postfix")
	uid, _ := strconv.Atoi(pf.Uid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, -1); err != nil {
		t.Fatalf("postfix data directory: %v", err)
	}
	if out, err := exec.Command(postfix, "-c", dir, "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s\n%s", err, out, p.Log())
	}
	// The master daemon itself, in the foreground (-d), as the test's child:
	// postfix start-fg would run it under a shell the test cannot reach.
	p.cmd = exec.Command("/usr/lib/postfix/sbin/master", "-c", dir, "-d")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start postfix: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- postfix output ---\n%s\n--- postfix log ---\n%s", p.out, p.Log())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitGreeting(ctx, p.SMTPAddr, "220 ", p.exited); err != nil {
		t.Fatalf("postfix: %v", err)
	}
	return p
}

// stop sends SIGTERM to the master (which stops its daemons) and waits for
// it to exit, killing it after 10 s.
func (p *Postfix) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Log returns Postfix's log file.
func (p *Postfix) Log() string {
	data, err := os.ReadFile(p.LogFile)
	if err != nil {
		return "(no postfix log: " + err.Error() + ")"
	}
	return string(data)
}
