// Package testdovecot runs a private Dovecot for tests of passgate's
// Dovecot clients: its auth service (the auth-client and auth-userdb
// sockets, as UNIX sockets and as TCP listeners) and IMAP, with users from a
// passwd-file the test writes, optionally OAuth 2.0 bearer tokens
// (WithOAuth) as Microsoft 365 and Gmail take them, and optionally
// submission relaying to an SMTP server of the test's (WithSubmission). Dovecot runs mail processes as nobody, so
// the harness needs root; a test whose machine lacks Dovecot or root is
// skipped, or fails when CI=true.
//
// (The integration package's harness runs the Dovecot that passgate proxies
// to, with master users and LMTP; this one runs only what a directory
// asks.)
package testdovecot

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testtool"
)

// Server is a running Dovecot.
type Server struct {
	Dir          string
	AuthSocket   string // UNIX auth-client socket
	UserdbSocket string // UNIX auth-userdb socket
	AuthAddr     string // TCP auth-client listener
	UserdbAddr   string // TCP auth-userdb listener
	IMAPAddr     string // IMAP with STARTTLS
	IMAPSAddr    string // IMAP over implicit TLS
	CertFile     string // the CA (self-signed) of the IMAP and submission listeners
	SubmitAddr   string // submission with STARTTLS; only WithSubmission

	conf   string
	key    string // the key of CertFile
	users  string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *testlog.Buffer
}

var seq atomic.Int64

const dovecotConf = `# written by passgate's testdovecot
instance_name = {{.Instance}}
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap{{if .Relay}} submission{{end}}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{{.Cert}}
ssl_key = <{{.Key}}
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login{{if .OAuth}} xoauth2 oauthbearer{{end}}
auth_cache_size = 0
auth_failure_delay = 0
auth_verbose = yes
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:~/Maildir
{{if .OAuth}}{{template "oauth" .}}{{end}}
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Users}}{{if .OAuth}}
  mechanisms = plain login{{end}}
}
userdb {
  driver = passwd-file
  args = {{.Users}}
  default_fields = uid=nobody gid=nogroup home={{.Dir}}/mail/%d/%n
}

service auth {
  unix_listener auth-client {
    mode = 0600
  }
  unix_listener auth-userdb {
    mode = 0600
  }
  inet_listener tcp-client {
    address = 127.0.0.1
    port = {{.AuthPort}}
  }
  inet_listener tcp-userdb {
    address = 127.0.0.1
    port = {{.UserdbPort}}
  }
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
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
{{- if .Relay}}
    address = 127.0.0.1
    port = {{.SubmitPort}}
{{- else}}
    port = 0
{{- end}}
  }
}
{{- if .Relay}}
hostname = localhost
submission_relay_host = {{.RelayHost}}
submission_relay_port = {{.RelayPort}}
{{- end}}
service lmtp {
  unix_listener lmtp {
    mode = 0600
  }
}
`

// Start starts a Dovecot of the test's own whose passwd-file holds passwd
// (see WritePasswd), stopped when the test ends; its log is printed if the
// test failed. Options add to the configuration (WithOAuth,
// WithSubmission).
func Start(t testing.TB, passwd string, opts ...Option) *Server {
	t.Helper()
	dovecot := testtool.Require(t, "dovecot", "dovecot-imapd")
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.relayAddr != "" {
		testtool.Require(t, "/usr/lib/dovecot/submission", "dovecot-submissiond")
	}
	testtool.RequireRoot(t, "Dovecot runs mail processes as nobody")
	dir, err := os.MkdirTemp("", "pg-dir-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, log: new(testlog.Buffer)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- dovecot log ---\n%s%s", s.log, s.Log())
		}
		s.stop()
		os.RemoveAll(dir)
	})
	if err := s.configure(passwd, o); err != nil {
		t.Fatalf("testdovecot: %v", err)
	}
	// The ports were free when picked, not when Dovecot binds them: on a
	// busy machine another process may take one meanwhile. Then Dovecot
	// exits; pick new ports and start again.
	for attempt := 1; ; attempt++ {
		err := s.start(dovecot)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("testdovecot: %v", err)
		}
		t.Logf("testdovecot: a port was taken before Dovecot bound it; new ports: %v", err)
		if err := s.writeConf(o); err != nil {
			t.Fatalf("testdovecot: %v", err)
		}
	}
}

// configure writes the certificate, the passwd-file, the mail directory
// and dovecot.conf, with ports of 127.0.0.1 that were free a moment ago.
func (s *Server) configure(passwd string, o options) error {
	// Dovecot's unprivileged processes must reach the directory.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	cert, key, err := testcert.WriteFiles(s.Dir, "dovecot-")
	if err != nil {
		return err
	}
	s.CertFile = cert
	s.users = filepath.Join(s.Dir, "users")
	if err := s.writePasswd(passwd); err != nil {
		return err
	}
	if err := MailDir(filepath.Join(s.Dir, "mail")); err != nil {
		return err
	}
	s.key = key
	return s.writeConf(o)
}

// writeConf writes dovecot.conf with ports of 127.0.0.1 that were free a
// moment ago, and empties the log of an earlier start.
func (s *Server) writeConf(o options) error {
	if err := os.Remove(filepath.Join(s.Dir, "dovecot.log")); err != nil && !os.IsNotExist(err) {
		return err
	}
	cert, key := s.CertFile, s.key
	ports, err := testtool.FreePorts(5)
	if err != nil {
		return err
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.AuthAddr, s.UserdbAddr, s.IMAPAddr, s.IMAPSAddr = addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	relayHost, relayPort, err := o.relay()
	if err != nil {
		return err
	}
	if relayHost != "" {
		s.SubmitAddr = addr(ports[4])
	}
	s.AuthSocket = filepath.Join(s.Dir, "run", "auth-client")
	s.UserdbSocket = filepath.Join(s.Dir, "run", "auth-userdb")
	if o.oauth != nil {
		if err := s.writeOAuth(o.oauth); err != nil {
			return err
		}
	}
	var conf strings.Builder
	tmpl := template.Must(template.New("conf").Parse(dovecotConf))
	template.Must(tmpl.New("oauth").Parse(oauthConf))
	err = tmpl.Execute(&conf, map[string]any{
		"Instance": fmt.Sprintf("pgdir-%d-%d", os.Getpid(), seq.Add(1)),
		"Dir":      s.Dir, "Cert": cert, "Key": key, "Users": s.users,
		"AuthPort": ports[0], "UserdbPort": ports[1], "IMAPPort": ports[2], "IMAPSPort": ports[3],
		"OAuth": o.oauth != nil,
		"Relay": relayHost != "", "RelayHost": relayHost, "RelayPort": relayPort, "SubmitPort": ports[4],
	})
	if err != nil {
		return fmt.Errorf("dovecot.conf: %w", err)
	}
	s.conf = filepath.Join(s.Dir, "dovecot.conf")
	return os.WriteFile(s.conf, []byte(conf.String()), 0o644)
}

// MailDir makes a Dovecot mail root, owned by nobody:nogroup (the uid and
// gid of the userdb here and in the integration harness).
func MailDir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return fmt.Errorf("mail dir: %w", err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return fmt.Errorf("mail dir owner: %w", err)
	}
	nogroup, err := user.LookupGroup("nogroup")
	if err != nil {
		return fmt.Errorf("mail dir group: %w", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nogroup.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("mail dir owner: %w", err)
	}
	return nil
}

// start runs Dovecot in the foreground and waits for IMAP's greeting and
// the auth sockets.
func (s *Server) start(dovecot string) error {
	s.cmd = exec.Command(dovecot, "-F", "-c", s.conf)
	// If the test binary dies (a timeout panic), Dovecot goes with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waits := [][2]string{{"tcp", s.IMAPAddr}, {"tcp", s.AuthAddr}, {"unix", s.AuthSocket}, {"unix", s.UserdbSocket}}
	if s.SubmitAddr != "" {
		waits = append(waits, [2]string{"tcp", s.SubmitAddr})
	}
	for _, a := range waits {
		if err := waitDial(ctx, a[0], a[1], s.exited); err != nil {
			s.stop()
			return fmt.Errorf("%w\n--- dovecot output ---\n%s\n--- log ---\n%s", err, s.log, s.Log())
		}
	}
	return nil
}

func waitDial(ctx context.Context, network, addr string, exited <-chan struct{}) error {
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-exited:
			return fmt.Errorf("wait for %s: dovecot exited (last: %v)", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WritePasswd replaces the passwd-file: lines of
// "user:{PLAIN}password::::::extra fields" (passdb extra fields such as
// nologin, and userdb fields prefixed userdb_). Dovecot notices the change
// when it next reads the file, which it checks at most about once a second.
func (s *Server) WritePasswd(t testing.TB, passwd string) {
	t.Helper()
	if err := s.writePasswd(passwd); err != nil {
		t.Fatalf("testdovecot: %v", err)
	}
}

func (s *Server) writePasswd(passwd string) error {
	// Write a new file and rename it, as an operator's tool would, so
	// that Dovecot never reads half a file.
	tmp := s.users + ".new"
	if err := os.WriteFile(tmp, []byte(passwd), 0o640); err != nil {
		return fmt.Errorf("passwd-file: %w", err)
	}
	g, err := user.LookupGroup("dovecot")
	if err != nil {
		return fmt.Errorf("passwd-file group: %w", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(tmp, -1, gid); err != nil {
		return fmt.Errorf("passwd-file group: %w", err)
	}
	return os.Rename(tmp, s.users)
}

// stop stops Dovecot (SIGTERM, then SIGKILL if it lingers).
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log returns Dovecot's log file.
func (s *Server) Log() string {
	data, err := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	if err != nil {
		return fmt.Sprintf("(no dovecot log: %v)", err)
	}
	return string(data)
}
