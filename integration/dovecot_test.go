package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testdovecot"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testtool"
)

// Master user credentials of the test Dovecot: passgate logs in upstream as
// "<user>*proxy" (or SASL PLAIN authzid=<user>, authcid=proxy).
const (
	masterUser   = "proxy"
	masterSecret = "master-secret-for-tests"
)

// presetUsers exist in every Dovecot the tests start; their primary password
// is primaryPassword(name).
var presetUsers = []string{"alice@example.org", "bob@example.org", "carol@example.org"}

// primaryPassword is the primary (Dovecot and passgate) password of a test user.
func primaryPassword(user string) string { return "primary-" + strings.SplitN(user, "@", 2)[0] + "-pw" }

// Dovecot is a private Dovecot instance listening on 127.0.0.1.
type Dovecot struct {
	Dir       string
	ConfFile  string
	LogFile   string
	CertFile  string // self-signed, SAN localhost and 127.0.0.1
	IMAPAddr  string // plain IMAP with STARTTLS
	IMAPSAddr string // implicit TLS
	// IMAPProxyAddr is plain IMAP that needs a PROXY header from 127.0.0.1
	// (haproxy = yes) and takes the client's address from it.
	IMAPProxyAddr string
	LMTPAddr      string
	SubmitAddr    string // submission (STARTTLS)
	RelayAddr     string // where submission relays to; nothing listens unless a test does
	POP3Addr      string // POP3 with STLS; "" without dovecot-pop3d
	POP3SAddr     string // POP3 over implicit TLS; "" without dovecot-pop3d
	SieveAddr     string // ManageSieve; "" without dovecot-managesieved

	cmd      *exec.Cmd
	exited   chan struct{}
	nextUser atomic.Int64 // next spare user for newUser
}

var dovecotSeq atomic.Int64

const dovecotConf = `# written by passgate's integration tests
instance_name = {{.Instance}}
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap lmtp submission{{if .POP3}} pop3{{end}}{{if .Sieve}} sieve{{end}}
listen = 127.0.0.1
hostname = localhost
postmaster_address = postmaster@example.org

ssl = yes
ssl_cert = <{{.CertFile}}
ssl_key = <{{.KeyFile}}
ssl_dh = </usr/share/dovecot/dh.pem

disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
auth_master_user_separator = *
auth_verbose = yes
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
haproxy_trusted_networks = 127.0.0.1
mail_location = maildir:~/Maildir

passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Dir}}/master-users
  master = yes
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Dir}}/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home={{.Dir}}/mail/%d/%n
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.IMAPPort}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.IMAPSPort}}
    ssl = yes
  }
  inet_listener imap_haproxy {
    address = 127.0.0.1
    port = {{.IMAPProxyPort}}
    haproxy = yes
  }
  service_count = 0
  client_limit = 1000
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = {{if .POP3}}{{.POP3Port}}{{else}}0{{end}}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = {{if .POP3}}{{.POP3SPort}}{{else}}0{{end}}
    ssl = yes
  }
  service_count = 0
  client_limit = 1000
}
{{if .Sieve}}service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = {{.SievePort}}
  }
}
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
{{end}}{{if .POP3}}protocol pop3 {
  mail_max_userip_connections = 1000
  pop3_uidl_format = %08Xu%08Xv
}
{{end}}service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = {{.SubmitPort}}
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
}
submission_relay_host = 127.0.0.1
submission_relay_port = {{.RelayPort}}
# Above passgate's default SIZE (50 MiB), so the 50 MiB test message passes
# (Dovecot's own default is 40 MiB, announced only after AUTH).
submission_max_mail_size = 60M

protocol imap {
  mail_max_userip_connections = 1000
}
`

// launchDovecot launches a Dovecot (launchDovecotOnce), again on new ports
// when one was taken: the ports were free when picked, not when Dovecot
// binds them, and on a busy machine another process may take one
// meanwhile ("Address already in use"; Dovecot exits).
func launchDovecot() (d *Dovecot, err error) {
	for attempt := 1; ; attempt++ {
		d, err = launchDovecotOnce()
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return d, err
		}
	}
}

// launchDovecotOnce writes a configuration under a new directory (world-
// traversable, because Dovecot's unprivileged processes must reach it) and
// starts Dovecot in the foreground as a child process. It returns once the
// IMAP port greets.
func launchDovecotOnce() (d *Dovecot, err error) {
	dir, err := os.MkdirTemp("", "pg-dovecot-")
	if err != nil {
		return nil, fmt.Errorf("dovecot dir: %w", err)
	}
	defer func() {
		if err != nil {
			if d != nil && d.LogFile != "" {
				if log, rerr := os.ReadFile(d.LogFile); rerr == nil {
					err = fmt.Errorf("%w\n--- dovecot log ---\n%s", err, log)
				}
			}
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dovecot dir: %w", err)
	}
	d = &Dovecot{Dir: dir, ConfFile: filepath.Join(dir, "dovecot.conf"), LogFile: filepath.Join(dir, "dovecot.log"), exited: make(chan struct{})}
	ports, err := testtool.FreePorts(9)
	if err != nil {
		return d, err
	}
	d.IMAPAddr, d.IMAPSAddr, d.LMTPAddr, d.SubmitAddr, d.RelayAddr = addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3]), addr(ports[4])
	d.IMAPProxyAddr = addr(ports[8])
	// POP3 and ManageSieve only where their Debian packages are installed
	// (dovecot-pop3d, dovecot-managesieved with dovecot-sieve).
	_, pop3Err := os.Stat("/usr/lib/dovecot/pop3")
	_, sieveErr := os.Stat("/usr/lib/dovecot/managesieve")
	hasPOP3, hasSieve := pop3Err == nil, sieveErr == nil
	if hasPOP3 {
		d.POP3Addr, d.POP3SAddr = addr(ports[5]), addr(ports[6])
	}
	if hasSieve {
		d.SieveAddr = addr(ports[7])
	}
	var keyFile string
	if d.CertFile, keyFile, err = testcert.WriteFiles(dir, "dovecot-"); err != nil {
		return d, err
	}
	if err := d.setupFiles(); err != nil {
		return d, err
	}
	conf, err := os.Create(d.ConfFile)
	if err != nil {
		return d, fmt.Errorf("dovecot config: %w", err)
	}
	err = template.Must(template.New("conf").Parse(dovecotConf)).Execute(conf, map[string]any{
		"Instance": fmt.Sprintf("pgtest-%d-%d", os.Getpid(), dovecotSeq.Add(1)),
		"Dir":      dir, "CertFile": d.CertFile, "KeyFile": keyFile,
		"IMAPPort": ports[0], "IMAPSPort": ports[1], "LMTPPort": ports[2], "SubmitPort": ports[3], "RelayPort": ports[4],
		"POP3": hasPOP3, "POP3Port": ports[5], "POP3SPort": ports[6], "Sieve": hasSieve, "SievePort": ports[7],
		"IMAPProxyPort": ports[8],
	})
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d, fmt.Errorf("dovecot config: %w", err)
	}

	dovecot, err := testtool.Path("dovecot")
	if err != nil {
		return d, fmt.Errorf("start dovecot: %w", err)
	}
	d.cmd = exec.Command(dovecot, "-F", "-c", d.ConfFile)
	// If the test binary dies (a timeout panic), Dovecot goes with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out := new(testlog.Buffer)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		return d, fmt.Errorf("start dovecot: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitGreeting(ctx, d.IMAPAddr, "* OK", d.exited); err != nil {
		d.stop()
		return d, fmt.Errorf("%w\n--- dovecot output ---\n%s", err, out)
	}
	return d, nil
}

// setupFiles writes the passwd-files (readable by the dovecot group) and the
// mail directory (owned by nobody:nogroup, the static userdb's uid/gid).
func (d *Dovecot) setupFiles() error {
	if err := os.WriteFile(filepath.Join(d.Dir, "master-users"), []byte(masterUser+":{PLAIN}"+masterSecret+"\n"), 0o640); err != nil {
		return fmt.Errorf("master passwd-file: %w", err)
	}
	if err := chownGroup(filepath.Join(d.Dir, "master-users"), "dovecot"); err != nil {
		return err
	}
	var users []string
	for _, u := range presetUsers {
		users = append(users, u+":{PLAIN}"+primaryPassword(u))
	}
	for i := range poolSize {
		users = append(users, poolUser(i)+":{PLAIN}"+primaryPassword(poolUser(i)))
	}
	if err := d.writeUsers(users); err != nil {
		return err
	}
	return testdovecot.MailDir(filepath.Join(d.Dir, "mail"))
}

// writeUsers writes the users passwd-file ("name:{PLAIN}password" lines).
func (d *Dovecot) writeUsers(users []string) error {
	path := filepath.Join(d.Dir, "users")
	if err := os.WriteFile(path, []byte(strings.Join(users, "\n")+"\n"), 0o640); err != nil {
		return fmt.Errorf("users passwd-file: %w", err)
	}
	return chownGroup(path, "dovecot")
}

func chownGroup(path, group string) error {
	g, err := user.LookupGroup(group)
	if err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// poolSize is how many spare mailbox users every Dovecot has for newUser.
// They are written before Dovecot starts because Dovecot re-reads a
// passwd-file at most once a second, so a user added later may stay unknown
// for a moment.
const poolSize = 400

// poolUser names the i-th spare mailbox user.
func poolUser(i int) string { return fmt.Sprintf("user%03d@example.org", i) }

// newUser returns a mailbox user that no other test uses, and its primary
// password, for tests whose mailbox state matters.
func (d *Dovecot) newUser(t testing.TB) (name, password string) {
	t.Helper()
	i := int(d.nextUser.Add(1)) - 1
	if i >= poolSize {
		t.Fatalf("all %d spare Dovecot users are taken: raise poolSize", poolSize)
	}
	name = poolUser(i)
	t.Logf("mailbox user %s", name)
	return name, primaryPassword(name)
}

// stop stops Dovecot (doveadm stop, then SIGKILL if it lingers) and waits for
// the master process to exit.
func (d *Dovecot) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	doveadm, err := testtool.Path("doveadm")
	if err != nil {
		doveadm = "doveadm"
	}
	stop := exec.Command(doveadm, "-c", d.ConfFile, "stop")
	if out, err := stop.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "doveadm stop: %v: %s\n", err, out)
		d.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// Log returns Dovecot's log file.
func (d *Dovecot) Log() string {
	data, err := os.ReadFile(d.LogFile)
	if err != nil {
		return fmt.Sprintf("(no dovecot log: %v)", err)
	}
	return string(data)
}

// LogWhen returns the log once it holds a line with every one of parts,
// or after 10 s (then the caller's check fails and says what is
// missing). Dovecot's log process writes lines a moment after the event:
// on a loaded machine, after the client already saw the reply.
func (d *Dovecot) LogWhen(parts ...string) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := d.Log()
		for _, line := range strings.Split(log, "\n") {
			if containsAll(line, parts) {
				return log
			}
		}
		if time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// startDovecot starts a Dovecot of the test's own, stopped when the test
// ends; its log is printed if the test failed.
func startDovecot(t testing.TB) *Dovecot {
	t.Helper()
	requireDovecot(t)
	d, err := launchDovecot()
	if err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- dovecot log ---\n%s", d.Log())
		}
		d.stop()
		os.RemoveAll(d.Dir)
	})
	return d
}

// The package's tests share one Dovecot, started on first use and stopped by
// TestMain.
var shared struct {
	once sync.Once
	d    *Dovecot
	err  error
}

// sharedDovecot returns the package's Dovecot, starting it on first use. A
// failing test prints the log written during the test.
func sharedDovecot(t testing.TB) *Dovecot {
	t.Helper()
	requireDovecot(t)
	shared.once.Do(func() { shared.d, shared.err = launchDovecot() })
	if shared.err != nil {
		t.Fatalf("start dovecot: %v", shared.err)
	}
	d := shared.d
	offset := len(d.Log())
	t.Cleanup(func() {
		if t.Failed() {
			log := d.Log()
			if offset <= len(log) {
				log = log[offset:]
			}
			t.Logf("--- dovecot log during the test ---\n%s", log)
		}
	})
	return d
}

// stopShared stops the shared Dovecot, if one was started.
func stopShared() {
	if shared.d != nil {
		shared.d.stop()
		os.RemoveAll(shared.d.Dir)
	}
}

// deliver puts a message into user's INBOX through Dovecot's LMTP service.
func (d *Dovecot) deliver(t testing.TB, user, message string) {
	t.Helper()
	if err := d.deliverErr(user, message); err != nil {
		t.Fatalf("deliver to %s: %v", user, err)
	}
}

func (d *Dovecot) deliverErr(user, message string) error {
	conn, err := net.DialTimeout("tcp", d.LMTPAddr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("lmtp dial: %w", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("lmtp LHLO: %w", err)
	}
	if err := c.Mail("sender@example.net", nil); err != nil {
		return fmt.Errorf("lmtp MAIL: %w", err)
	}
	if err := c.Rcpt(user, nil); err != nil {
		return fmt.Errorf("lmtp RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("lmtp DATA: %w", err)
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(message, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return fmt.Errorf("lmtp DATA: %w", err)
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		return fmt.Errorf("lmtp DATA: %w", err)
	}
	if err := c.Quit(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("lmtp QUIT: %w", err)
	}
	return nil
}

// testMessage returns a small RFC 5322 message whose subject names it.
func testMessage(to, subject, body string) string {
	return "From: Sender <sender@example.net>\r\n" +
		"To: " + to + "\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.net>\r\n" +
		"\r\n" + body + "\r\n"
}
