// Package testredis runs private redis-server processes for tests: each on
// 127.0.0.1 and a free port, in a temporary directory, without automatic
// persistence (--save "", no AOF), stopped by its PID when the test ends
// and its output printed if the test failed. Besides a plain server it
// starts TLS, ACL, replica, Cluster and Sentinel setups through extra
// arguments (StartArgs, StartCluster, StartSentinel). A test whose machine
// lacks redis-server is skipped, or fails when CI=true.
package testredis

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testtool"
)

// readyWait bounds how long a redis-server may take to start.
const readyWait = 20 * time.Second

// Server is a redis-server process that the test started.
type Server struct {
	Port int
	// Dir is the working directory: a dump.rdb written by Save is loaded
	// again by Restart.
	Dir string

	t    testing.TB
	path string
	// first are the arguments before the common ones (a config file);
	// args(port) those after them; ready is the log line that says the
	// server is up.
	first []string
	args  func(port int) []string
	ready string
	out   *testlog.Buffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// Path returns the path of redis-server, or skips the test (fails it when
// CI=true); a test calls it to skip before preparing anything else.
func Path(t testing.TB) string {
	t.Helper()
	return testtool.Require(t, "redis-server", "redis-server")
}

// Start starts a plain redis-server with extra arguments after the common
// ones (e.g. "--user", ... or "--replicaof", ...).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartArgs(t, func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port)}, extra...)
	})
}

// StartArgs starts redis-server with args(port) after the common arguments,
// retrying with another port if the chosen one was taken meanwhile; args
// must make it listen on port (e.g. "--port", or "--port 0 --tls-port").
func StartArgs(t testing.TB, args func(port int) []string) *Server {
	t.Helper()
	return start(t, &Server{args: args, ready: "Ready to accept connections"})
}

// start starts s (args and ready set; Dir and first optional).
func start(t testing.TB, s *Server) *Server {
	t.Helper()
	s.t, s.path, s.out = t, Path(t), new(testlog.Buffer)
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("--- redis-server output (port %d) ---\n%s", s.Port, s.out)
		}
	})
	var err error
	for range 3 {
		if s.Port, err = testtool.FreePort(); err != nil {
			t.Fatal(err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redis-server does not start: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Output returns everything the server's processes printed.
func (s *Server) Output() string { return s.out.String() }

// start runs the process on s.Port and waits until it prints s.ready.
func (s *Server) start() error {
	args := append(slices.Clone(s.first),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--logfile", "", "--daemonize", "no")
	args = append(args, s.args(s.Port)...)
	cmd := exec.Command(s.path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(ready) })
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(s.out, sc.Text())
			if strings.Contains(sc.Text(), s.ready) {
				once()
			}
		}
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.paused = cmd, exited, false
	s.mu.Unlock()
	timer := time.NewTimer(readyWait)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("redis-server on port %d exited at start (port taken?)", s.Port)
	case <-timer.C:
		s.Stop()
		return fmt.Errorf("redis-server on port %d not ready after %v", s.Port, readyWait)
	}
}

// Stop ends the process by its PID (SIGTERM, SIGKILL after 10 s) and waits
// for it. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	cmd, exited, paused := s.take()
	if cmd == nil {
		return
	}
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		cmd.Process.Kill()
		<-exited
	}
}

// StopSaved is Stop after Save: the data is on disk, so that Restart
// brings it back as a persistent Redis's restart would.
func (s *Server) StopSaved() {
	s.t.Helper()
	if err := s.Save(); err != nil {
		s.t.Errorf("redis SAVE: %v", err)
	}
	s.Stop()
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	if cmd, exited, _ := s.take(); cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

// take marks the server stopped and returns the process it ran.
func (s *Server) take() (*exec.Cmd, chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd, exited, paused := s.cmd, s.exited, s.paused
	s.cmd = nil
	return cmd, exited, paused
}

// Restart stops the server if it runs and starts it again on the same port
// and directory (loading a dump.rdb that Save wrote).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart redis-server on port %d: %v", s.Port, err)
	}
}

// Pause stops the process with SIGSTOP: it accepts TCP connections (the
// kernel does) but answers nothing, like a hung or unreachable server.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redis-server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
	s.paused = paused
}

// ioTimeout bounds Save's dial, write and read.
const ioTimeout = 10 * time.Second

// Save makes Redis write its data to Dir (SAVE), so that Restart brings
// it back as a persistent Redis's restart would.
func (s *Server) Save() error { return s.command("SAVE") }

// command sends one argument-less command and expects +OK (RESP2).
func (s *Server) command(name string) error {
	conn, err := net.DialTimeout("tcp", s.Addr(), ioTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := fmt.Fprintf(conn, "*1\r\n$%d\r\n%s\r\n", len(name), name); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+OK\r\n" {
		return fmt.Errorf("%s: %q", name, strings.TrimSpace(line))
	}
	return nil
}
