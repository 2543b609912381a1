package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
)

// The passgate binary, built once per run from ../cmd/passgate.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// passgateBinary builds cmd/passgate on first use. A failed build fails every
// test that needs the binary, with the compiler's output.
func passgateBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if binary.dir, err = os.MkdirTemp("", "pg-bin-"); err != nil {
			binary.err = fmt.Errorf("build dir: %w", err)
			return
		}
		path := filepath.Join(binary.dir, "passgate")
		out, err := exec.Command(goTool, "build", "-o", path, "../cmd/passgate").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ../cmd/passgate: %w\n%s", err, out)
			fmt.Fprintf(os.Stderr, "FAILED to build passgate: %v\n", binary.err)
			return
		}
		binary.path = path
	})
	if binary.err != nil {
		t.Fatalf("passgate binary: %v", binary.err)
	}
	return binary.path
}

func removeBinary() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}

// passgateOpts are what a test changes in passgate's configuration. The zero
// value is a passgate in front of the shared Dovecot (plain IMAP, master-user
// login, cheap argon2 parameters) that refuses LOGIN before TLS.
type passgateOpts struct {
	AllowCleartext bool
	// Upstream is the IMAP address passgate logs in to; empty means the
	// Dovecot's plain IMAP port (or its IMAPS port when UpstreamTLS is "tls").
	Upstream string
	// UpstreamTLS is "none" (zero), "starttls" or "tls".
	UpstreamTLS string
	// Login is the upstream login mode; empty means "master".
	Login string
	// SecretVia says how the master secret reaches passgate: "" (inline in
	// the file), "file" (master_secret_file) or "env"
	// (PASSGATE_IMAP_UPSTREAM_MASTER_SECRET).
	SecretVia string
	// DefaultArgon keeps passgate's default argon2id parameters instead of
	// the cheap ones the tests use for speed.
	DefaultArgon bool
	// MaxFailedLogins is 10 when zero.
	MaxFailedLogins int
	// NoAuthCache turns the verified-login cache off, so that every login
	// runs argon2id.
	NoAuthCache bool
	// Portal runs the portal on a free port of 127.0.0.1 (Passgate.Portal
	// is its URL, which the MFA message then names).
	Portal bool
	// ProxyProtocol makes imap.listen take PROXY protocol headers from
	// 127.0.0.1/32 (a load balancer there, such as HAProxy).
	ProxyProtocol bool
	// ProxySMTP makes smtp.listen take PROXY headers too (with
	// ProxyProtocol; only for an smtpGate, which has that listener).
	ProxySMTP bool
	// SendProxy is imap.upstream's send_proxy ("v1", "v2"); with it, passgate
	// sends no IMAP ID, so only the header can carry the client's address.
	SendProxy string
}

// portalURL is what passgate tells MFA users to visit.
const portalURL = "https://mail.example.org/app-passwords"

const passgateConf = `# written by passgate's integration tests
[imap]
listen = "{{.IMAPAddr}}"
listen_tls = "{{.IMAPSAddr}}"
allow_cleartext = {{.AllowCleartext}}

[imap.upstream]
address = "{{.Upstream}}"
tls = "{{.UpstreamTLS}}"
{{- if ne .UpstreamTLS "none"}}
ca_file = "{{.CAFile}}"
server_name = "localhost"
{{- end}}
login = "{{.Login}}"
master_user = "{{.MasterUser}}"
{{- if eq .SecretVia ""}}
master_secret = "{{.MasterSecret}}"
{{- else if eq .SecretVia "file"}}
master_secret_file = "{{.SecretFile}}"
{{- end}}
{{- if .SendProxy}}
send_proxy = "{{.SendProxy}}"
send_id = false
{{- else}}
send_id = true
{{- end}}
{{if .ProxyProtocol}}
[proxy_protocol]
listeners = ["imap.listen"{{if .ProxySMTP}}, "smtp.listen"{{end}}]
trusted_proxies = ["127.0.0.1/32"]
{{end}}
[tls]
cert_file = "{{.CertFile}}"
key_file = "{{.KeyFile}}"

[store]
path = "{{.DBFile}}"
{{if not .DefaultArgon}}
[authn]
argon_memory_kib = 1024
argon_time = 1
argon_threads = 1
{{end}}
[portal]
url = "{{.Portal}}"
{{- if .PortalAddr}}
listen = "{{.PortalAddr}}"
key_file = "{{.PortalKey}}"
{{- end}}

[limits]
preauth_timeout = "60s"
idle_timeout = "35m"
max_failed_logins = {{.MaxFailedLogins}}
# The tests log in wrongly on purpose, many times, from 127.0.0.1: keep the
# brute-force tarpit short so the run stays quick (authn's tests cover the
# real delays and blocks).
tarpit_base = "5ms"
tarpit_max = "40ms"
{{if .NoAuthCache}}auth_cache_ttl = "off"
{{end}}`

// Passgate is one passgate configuration (a directory with its config file,
// certificate and database) and, while serve runs, its process.
type Passgate struct {
	Dir       string
	ConfFile  string
	CertFile  string // passgate's own self-signed certificate (localhost, 127.0.0.1)
	IMAPAddr  string // plain + STARTTLS
	IMAPSAddr string // implicit TLS
	Portal    string // the portal's URL; with passgateOpts.Portal, it runs there
	// Proxied says IMAPAddr takes PROXY headers from 127.0.0.1 (and needs
	// one there); ProxiedSMTP says the same of an smtpGate's SubmitAddr.
	Proxied, ProxiedSMTP bool

	bin   string
	env   []string
	cmd   *exec.Cmd
	out   *testlog.Buffer
	done  chan struct{}
	state *os.ProcessState
}

// newPassgate writes a configuration in front of d; serve is not started.
func newPassgate(t testing.TB, d *Dovecot, o passgateOpts) *Passgate {
	t.Helper()
	bin := passgateBinary(t)
	dir := t.TempDir()
	pg := &Passgate{
		Dir: dir, ConfFile: filepath.Join(dir, "passgate.toml"),
		IMAPAddr: addr(freePort(t)), IMAPSAddr: addr(freePort(t)),
		bin: bin, out: new(testlog.Buffer), Proxied: o.ProxyProtocol, ProxiedSMTP: o.ProxyProtocol && o.ProxySMTP,
	}
	certFile, keyFile := testcert.Write(t, dir, "passgate-")
	pg.CertFile = certFile
	if o.UpstreamTLS == "" {
		o.UpstreamTLS = "none"
	}
	if o.Upstream == "" {
		o.Upstream = d.IMAPAddr
		if o.UpstreamTLS == "tls" {
			o.Upstream = d.IMAPSAddr
		}
	}
	if o.Login == "" {
		o.Login = "master"
	}
	if o.MaxFailedLogins == 0 {
		o.MaxFailedLogins = 10
	}
	pg.Portal = portalURL
	var portalAddr, portalKey string
	if o.Portal {
		portalAddr, portalKey = addr(freePort(t)), filepath.Join(dir, "portal-key")
		pg.Portal = "http://" + portalAddr + "/"
		if err := os.WriteFile(portalKey, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
			t.Fatalf("portal key: %v", err)
		}
	}
	secretFile := filepath.Join(dir, "master-secret")
	switch o.SecretVia {
	case "file":
		if err := os.WriteFile(secretFile, []byte(masterSecret+"\n"), 0o600); err != nil {
			t.Fatalf("master secret file: %v", err)
		}
	case "env":
		pg.env = append(pg.env, "PASSGATE_IMAP_UPSTREAM_MASTER_SECRET="+masterSecret)
	}
	var conf bytes.Buffer
	err := template.Must(template.New("conf").Parse(passgateConf)).Execute(&conf, map[string]any{
		"IMAPAddr": pg.IMAPAddr, "IMAPSAddr": pg.IMAPSAddr, "AllowCleartext": o.AllowCleartext,
		"Upstream": o.Upstream, "UpstreamTLS": o.UpstreamTLS, "CAFile": d.CertFile, "Login": o.Login,
		"MasterUser": masterUser, "MasterSecret": masterSecret, "SecretVia": o.SecretVia, "SecretFile": secretFile,
		"CertFile": certFile, "KeyFile": keyFile, "DBFile": filepath.Join(dir, "passgate.db"),
		"DefaultArgon": o.DefaultArgon, "Portal": pg.Portal, "PortalAddr": portalAddr, "PortalKey": portalKey,
		"MaxFailedLogins": o.MaxFailedLogins,
		"NoAuthCache":     o.NoAuthCache,
		"ProxyProtocol":   o.ProxyProtocol, "ProxySMTP": o.ProxySMTP, "SendProxy": o.SendProxy,
	})
	if err != nil {
		t.Fatalf("passgate config: %v", err)
	}
	if err := os.WriteFile(pg.ConfFile, conf.Bytes(), 0o600); err != nil {
		t.Fatalf("passgate config: %v", err)
	}
	return pg
}

// startPassgate writes a configuration in front of d and starts serve.
func startPassgate(t testing.TB, d *Dovecot, o passgateOpts) *Passgate {
	t.Helper()
	pg := newPassgate(t, d, o)
	pg.serve(t)
	return pg
}

// serve starts `passgate serve` and waits until its IMAP port greets. It is
// stopped when the test ends; its output is printed if the test failed.
func (pg *Passgate) serve(t testing.TB) {
	t.Helper()
	pg.cmd = exec.Command(pg.bin, "serve", "--config", pg.ConfFile)
	pg.cmd.Env = append(os.Environ(), pg.env...)
	pg.cmd.Stdout, pg.cmd.Stderr = pg.out, pg.out
	leaks.output(pg.out)
	pg.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pg.done = make(chan struct{})
	if err := pg.cmd.Start(); err != nil {
		t.Fatalf("start passgate serve: %v", err)
	}
	cmd, done := pg.cmd, pg.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		pg.stop(t)
		if t.Failed() {
			t.Logf("--- passgate output ---\n%s", pg.out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// From 127.0.0.1, a PROXY-enabled listener needs a header: a LOCAL one,
	// like a balancer's health check.
	var preamble []byte
	if pg.Proxied {
		preamble = proxyLocalHeader(t)
	}
	if err := waitGreetingAfter(ctx, pg.IMAPAddr, preamble, "* OK", done); err != nil {
		t.Fatalf("passgate serve: %v", err)
	}
}

// stop sends SIGTERM to serve and waits for it to exit, with SIGKILL after
// 10 s. It is a no-op when serve is not running.
func (pg *Passgate) stop(t testing.TB) {
	t.Helper()
	if pg.cmd == nil {
		return
	}
	cmd, done := pg.cmd, pg.done
	pg.cmd = nil
	select {
	case <-done:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if !cmd.ProcessState.Success() {
				t.Errorf("passgate serve exited with %v after SIGTERM, want a clean exit", cmd.ProcessState)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("passgate serve did not exit 10 s after SIGTERM; killing it")
			cmd.Process.Kill()
			<-done
		}
	}
	pg.state = cmd.ProcessState
}

// Output returns what serve wrote to stdout and stderr so far.
func (pg *Passgate) Output() string { return pg.out.String() }

// runErr runs a passgate CLI command with --config and returns its stdout,
// stderr and exit code.
func (pg *Passgate) runErr(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pg.bin, append(args, "--config", pg.ConfFile)...)
	cmd.Env = append(os.Environ(), pg.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	leaks.output(stringOutput(e.String())) // stdout may show a new password on purpose
	var exit *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &exit):
		return o.String(), e.String(), exit.ExitCode()
	default:
		t.Fatalf("passgate %s: %v", strings.Join(args, " "), err)
		return "", "", -1
	}
}

// run runs a passgate CLI command and returns its stdout, failing the test on
// a non-zero exit.
func (pg *Passgate) run(t testing.TB, args ...string) string {
	t.Helper()
	return pg.runStdin(t, "", args...)
}

// runStdin is run with stdin.
func (pg *Passgate) runStdin(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := pg.runErr(t, stdin, args...)
	if code != 0 {
		t.Fatalf("passgate %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// addUser creates user in passgate with the given primary password.
func (pg *Passgate) addUser(t testing.TB, user, password string, mfa bool) {
	t.Helper()
	args := []string{"user", "add", user, "--password-stdin"}
	if mfa {
		args = append(args, "--mfa")
	}
	leaks.secret(password)
	pg.runStdin(t, password+"\n", args...)
}

// appPassword is the JSON that `apppass create --json` prints.
type appPassword struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// createAppPassword creates an app password for user and returns it.
func (pg *Passgate) createAppPassword(t testing.TB, user, name string) appPassword {
	t.Helper()
	out := pg.run(t, "apppass", "create", user, "--name", name, "--json")
	var p appPassword
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("apppass create --json: %v in %q", err, out)
	}
	if p.ID == "" || p.Name != name || p.Password == "" {
		t.Fatalf("apppass create --json: incomplete %+v", p)
	}
	leaks.secret(p.Password)
	return p
}

// account is a user that exists both in Dovecot and in passgate.
type account struct {
	User    string
	Primary string // primary password (same in Dovecot and passgate)
	AppPass string // as printed: four groups of four characters
	AppID   string
	MFA     bool
}

// newAccount creates a fresh Dovecot user, adds it to passgate (with MFA when
// asked) and gives it an app password.
func newAccount(t testing.TB, d *Dovecot, pg *Passgate, mfa bool) account {
	t.Helper()
	user, primary := d.newUser(t)
	pg.addUser(t, user, primary, mfa)
	p := pg.createAppPassword(t, user, "test client")
	return account{User: user, Primary: primary, AppPass: p.Password, AppID: p.ID, MFA: mfa}
}
