// Package testslapd runs a private OpenLDAP slapd for tests: a generated
// slapd.conf in a temporary directory, an mdb database, the memberof
// overlay, plain LDAP (with StartTLS) and LDAPS on free ports of 127.0.0.1
// with a certificate from internal/testcert, entries loaded from an LDIF
// with ldapadd. A test whose machine lacks slapd or ldap-utils is skipped,
// or fails when CI=true.
package testslapd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testtool"
)

// Options say what the server holds. Suffix and LDIF are required.
type Options struct {
	// Suffix is the database's naming context, e.g. "dc=example,dc=org".
	Suffix string
	// LDIF is loaded with ldapadd (as the root DN) once the server is up,
	// so that overlays (memberof) see the entries being added.
	LDIF string
	// Schemas are extra schema files, after core, cosine and inetorgperson.
	Schemas []string
	// ACL is the access control of the database, slapd.conf "access"
	// lines. Empty: every entry readable by everyone bound, userPassword
	// usable only to authenticate (by anonymous auth, by self write).
	ACL string
}

// Server is a running slapd. Its root DN is AdminDN / AdminPassword.
type Server struct {
	URL      string // ldap://127.0.0.1:port (StartTLS offered)
	LDAPSURL string // ldaps://127.0.0.1:port
	CertFile string // the CA (self-signed) of both listeners
	Dir      string
	Suffix   string

	opts    Options
	slapd   string
	conf    string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *testlog.Buffer
	stopped bool
}

// AdminPassword is the root DN's password of every test server.
const AdminPassword = "slapd-admin-secret"

// AdminDN is the root DN: "cn=admin," + Suffix.
func (s *Server) AdminDN() string { return "cn=admin," + s.Suffix }

const defaultACL = `access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by users read
  by * none`

const slapdConf = `# written by passgate's testslapd
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
{{range .Schemas}}include {{.}}
{{end}}
pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCertificateFile {{.Cert}}
TLSCertificateKeyFile {{.Key}}

database mdb
maxsize 67108864
suffix "{{.Suffix}}"
rootdn "cn=admin,{{.Suffix}}"
rootpw {{.RootPW}}
directory {{.Dir}}/data
overlay memberof
{{.ACL}}
`

// Start starts a slapd of the test's own, loaded with opts.LDIF and stopped
// when the test ends; its log is printed if the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	slapd := testtool.Require(t, "slapd", "slapd")
	testtool.Require(t, "ldapadd", "ldap-utils")
	s := &Server{Suffix: opts.Suffix, opts: opts, slapd: slapd, Dir: t.TempDir(), log: new(testlog.Buffer)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- slapd log ---\n%s", s.log)
		}
		s.Stop()
	})
	if err := s.configure(); err != nil {
		t.Fatalf("testslapd: %v", err)
	}
	// The ports were free when picked, not when slapd binds them: on a
	// busy machine another process may take one meanwhile. Then slapd
	// exits; pick new ports and start again.
	for attempt := 1; ; attempt++ {
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("testslapd: %v", err)
		}
		t.Logf("testslapd: a port was taken before slapd bound it; new ports: %v", err)
		if err := s.pickPorts(); err != nil {
			t.Fatalf("testslapd: %v", err)
		}
	}
	if err := s.ldapadd(opts.LDIF); err != nil {
		t.Fatalf("testslapd: %v", err)
	}
	return s
}

// configure writes the certificate, slapd.conf and the data directory, and
// picks the ports.
func (s *Server) configure() error {
	cert, key, err := testcert.WriteFiles(s.Dir, "slapd-")
	if err != nil {
		return err
	}
	s.CertFile = cert
	if err := os.Mkdir(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	acl := s.opts.ACL
	if acl == "" {
		acl = defaultACL
	}
	var conf bytes.Buffer
	err = template.Must(template.New("conf").Parse(slapdConf)).Execute(&conf, map[string]any{
		"Schemas": s.opts.Schemas, "Dir": s.Dir, "Cert": cert, "Key": key,
		"Suffix": s.opts.Suffix, "RootPW": AdminPassword, "ACL": acl,
	})
	if err != nil {
		return fmt.Errorf("slapd.conf: %w", err)
	}
	s.conf = filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(s.conf, conf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("slapd.conf: %w", err)
	}
	return s.pickPorts()
}

// pickPorts picks two distinct ports of 127.0.0.1 that were free a moment
// ago, for LDAP and LDAPS.
func (s *Server) pickPorts() error {
	ports, err := testtool.FreePorts(2)
	if err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ports[0])
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ports[1])
	return nil
}

// start runs slapd in the foreground (-d) with stats logging and waits until
// the root DN can bind.
func (s *Server) start() error {
	s.cmd = exec.Command(s.slapd, "-d", "256", "-f", s.conf, "-h", s.URL+"/ "+s.LDAPSURL+"/")
	// If the test binary dies (a timeout panic), slapd goes with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	s.stopped = false
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(s.cmd, s.exited)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := s.dialAdmin()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("slapd exited at start: %v\n--- slapd log ---\n%s", err, s.log)
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("slapd not ready: %v\n--- slapd log ---\n%s", err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ldapadd loads ldif as the root DN with ldap-utils' ldapadd.
func (s *Server) ldapadd(ldif string) error {
	path, err := testtool.Path("ldapadd")
	if err != nil {
		return err
	}
	cmd := exec.Command(path, "-x", "-H", s.URL, "-D", s.AdminDN(), "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ldapadd: %v: %s", err, out)
	}
	return nil
}

// dialAdmin returns a connection bound as the root DN.
func (s *Server) dialAdmin() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(s.AdminDN(), AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Modify applies change as the root DN (replace, add or delete attributes),
// as an operator changes the directory while passgate runs.
func (s *Server) Modify(t testing.TB, req *ldap.ModifyRequest) {
	t.Helper()
	c, err := s.dialAdmin()
	if err != nil {
		t.Fatalf("testslapd: bind as admin: %v", err)
	}
	defer c.Close()
	if err := c.Modify(req); err != nil {
		t.Fatalf("testslapd: modify %s: %v", req.DN, err)
	}
}

// SetPassword replaces the userPassword of dn.
func (s *Server) SetPassword(t testing.TB, dn, password string) {
	t.Helper()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("userPassword", []string{password})
	s.Modify(t, req)
}

// Stop stops slapd (SIGTERM, then SIGKILL if it lingers) and waits for it.
// The data stay, so Restart brings the same directory back.
func (s *Server) Stop() {
	if s.cmd == nil || s.stopped {
		return
	}
	s.stopped = true
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Restart stops slapd and starts it again on the same ports and data, so
// that every connection a client held is cut.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for range 20 { // the old listener may linger for a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testslapd: restart: %v", err)
}

// Log returns what slapd has logged (stats level: connections, operations
// and their results).
func (s *Server) Log() string { return s.log.String() }
