package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/demomail"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
)

// The servers the tests measure run in a child process (this test binary
// started again with serverEnv set), so that its memory and CPU are the
// servers' alone: an upstream (internal/demomail: imapmemserver and a
// go-smtp submission server that delivers into it), passgate's IMAP and
// SMTP front-ends logging in to it as master, and a go-smtp sink.
const serverEnv = "PASSGATE_BENCH_TEST_SERVERS"

const (
	testUser   = "alice@example.org"
	testMaster = "bench-master"
)

// servers is what the child prints on its first line of output.
type servers struct {
	PID          int
	DirectIMAP   string // imapmemserver (demomail), LOGIN "user*master"
	MasterSecret string
	Sink         string // go-smtp sink, AUTH PLAIN as "user*master" too
	IMAP, IMAPS  string // passgate front-end, LOGIN testUser / AppPassword
	SMTP         string // passgate submission
	AppPassword  string
}

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		if err := serveForTests(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "test servers:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startServers runs the child and stops it when the test ends.
func startServers(t *testing.T) servers {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close() // the child stops its servers and exits
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("test servers: %v", err)
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("test servers did not stop")
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("test servers: %v", err)
	}
	var s servers
	if err := json.Unmarshal(line, &s); err != nil {
		t.Fatalf("test servers: %v", err)
	}
	s.PID = cmd.Process.Pid
	return s
}

// serveForTests starts the servers, writes their addresses to out, and
// serves until in reaches EOF.
func serveForTests(out io.Writer, in io.Reader) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir, err := os.MkdirTemp("", "bench-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := servers{MasterSecret: "master-secret-1"}

	mail, err := demomail.Start(testMaster, s.MasterSecret, []string{testUser})
	if err != nil {
		return err
	}
	defer mail.Close()
	s.DirectIMAP = mail.IMAPAddr().String()

	db, err := bolt.Open(filepath.Join(dir, "passgate.db"), bolt.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer db.Close()
	v := &authn.Verifier{Store: db, Logger: quiet}
	svc := &account.Service{Store: db, Verifier: v, Logger: quiet}
	who := account.Actor{Door: account.DoorCLI, Name: "bench"}
	if err := svc.CreateUser(ctx, who, account.NewUser{Username: testUser}); err != nil {
		return err
	}
	np, err := svc.CreateAppPassword(ctx, who, testUser, "bench", account.AppPasswordOptions{})
	if err != nil {
		return err
	}
	s.AppPassword = np.Password
	guard := &authn.Guard{Verifier: v, Counters: &memcount.Counters{}, Cache: &authn.Cache{}, Logger: quiet}

	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	listen := func(serve func(net.Listener) error) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		go serve(ln)
		return ln.Addr().String(), nil
	}
	front := &imap.Server{
		Auth: guard,
		Upstream: &upstream.IMAP{Address: s.DirectIMAP, Mode: upstream.ModeLoginMaster,
			MasterUser: testMaster, MasterSecret: s.MasterSecret},
		TLSConfig: testcert.ServerConfig(), AllowCleartext: true, Logger: quiet,
	}
	closers = append(closers, front.Close)
	sub := &smtp.Server{
		Auth: guard,
		Upstream: (&upstream.Config{Address: mail.SMTPAddr().String(), Mode: upstream.ModeMaster,
			MasterUser: testMaster, MasterSecret: s.MasterSecret}).SMTP(),
		AllowCleartext: true, Hostname: "passgate.test", Logger: quiet,
	}
	closers = append(closers, sub.Close)
	sink := gosmtp.NewServer(sinkBackend{secret: s.MasterSecret})
	sink.AllowInsecureAuth = true
	sink.Domain = "sink.test"
	closers = append(closers, sink.Close)
	for _, l := range []struct {
		addr  *string
		serve func(net.Listener) error
	}{{&s.IMAP, front.Serve}, {&s.IMAPS, front.ServeTLS}, {&s.SMTP, sub.Serve}, {&s.Sink, sink.Serve}} {
		if *l.addr, err = listen(l.serve); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(out).Encode(s); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

// sinkBackend accepts AUTH PLAIN as testUser*testMaster with the master
// secret (the direct target's login) and drops every message.
type sinkBackend struct{ secret string }

func (b sinkBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &sinkSession{secret: b.secret}, nil
}

type sinkSession struct {
	secret string
	authed bool
}

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != testUser+"*"+testMaster || pass != s.secret {
			return gosmtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *sinkSession) Mail(string, *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	return nil
}

func (s *sinkSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }

func (s *sinkSession) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err == nil && n == 0 {
		err = errors.New("empty message")
	}
	return err
}

func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }
