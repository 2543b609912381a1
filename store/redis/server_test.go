package redis_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// readyWait bounds how long a redis-server may take to start.
const readyWait = 20 * time.Second

// redisServerPath finds redis-server, or skips the test (fails it in CI,
// which must install it).
func redisServerPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not installed, and CI must install it: %v", err)
		}
		t.Skipf("redis-server is not installed: %v", err)
	}
	return path
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a redis-server process that this test started, on 127.0.0.1.
type server struct {
	t    testing.TB
	path string
	dir  string
	Port int
	// first are the arguments before the common ones (a config file);
	// args(port) those after them; ready is the log line that says the
	// server is up.
	first []string
	args  func(port int) []string
	ready string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
	paused bool
}

// startServer starts a plain redis-server on a free port, without
// persistence, plus extra arguments. It is stopped when the test ends.
func startServer(t testing.TB, extra ...string) *server {
	return startServerArgs(t, func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port)}, extra...)
	})
}

// startServerArgs starts redis-server with args(port) after the common
// arguments, retrying with another port if the first one was taken.
func startServerArgs(t testing.TB, args func(port int) []string) *server {
	t.Helper()
	return startServerWith(t, &server{args: args, ready: "Ready to accept connections"})
}

// startServerWith starts s (args and ready set) as startServerArgs does.
func startServerWith(t testing.TB, s *server) *server {
	t.Helper()
	s.t, s.path = t, redisServerPath(t)
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	t.Cleanup(s.Stop)
	var err error
	for range 3 {
		s.Port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redis-server does not start: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// start runs the process on s.Port and waits until it accepts connections.
func (s *server) start() error {
	args := append(slices.Clone(s.first),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "", "--daemonize", "no")
	args = append(args, s.args(s.Port)...)
	cmd := exec.Command(s.path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	log := &bytes.Buffer{}
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			s.mu.Lock()
			log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if strings.Contains(sc.Text(), s.ready) {
				once()
			}
		}
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.log, s.paused = cmd, exited, log, false
	s.mu.Unlock()
	timer := time.NewTimer(readyWait)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("redis-server exited:\n%s", s.Log())
	case <-timer.C:
		s.Stop()
		return fmt.Errorf("redis-server not ready after %v:\n%s", readyWait, s.Log())
	}
}

// Log returns what the current process printed.
func (s *server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for
// it. Stopping a stopped server does nothing.
func (s *server) Stop() {
	s.mu.Lock()
	cmd, exited, paused := s.cmd, s.exited, s.paused
	s.cmd = nil
	s.mu.Unlock()
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

// Restart starts the server again on the same port.
func (s *server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart: %v", err)
	}
}

// Pause stops the process with SIGSTOP: it accepts TCP connections (the
// kernel does) but answers nothing, like a hung or unreachable server.
func (s *server) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume undoes Pause.
func (s *server) Resume() { s.signal(syscall.SIGCONT, false) }

func (s *server) signal(sig syscall.Signal, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
	s.paused = paused
}

// startCluster starts n redis-server processes in cluster mode, joins them
// and spreads the 16384 slots over them; it returns their addresses once
// every node sees the whole cluster.
func startCluster(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var clients []*goredis.Client
	for i := range n {
		bus := freePort(t)
		s := startServerArgs(t, func(port int) []string {
			return []string{"--port", strconv.Itoa(port),
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
				"--cluster-node-timeout", "5000"}
		})
		addrs = append(addrs, s.Addr())
		c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		if i > 0 {
			if err := clients[0].Do(t.Context(), "cluster", "meet", "127.0.0.1", s.Port, bus).Err(); err != nil {
				t.Fatalf("CLUSTER MEET: %v", err)
			}
		}
	}
	for i, c := range clients {
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(t.Context(), "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !clusterReady(t, clients) {
		if time.Now().After(deadline) {
			t.Fatal("cluster not ready within 30s")
		}
		<-tick.C
	}
	return addrs
}

// clusterReady reports whether every node says the cluster is ok and knows
// every node's slots.
func clusterReady(t testing.TB, clients []*goredis.Client) bool {
	for _, c := range clients {
		info, err := c.ClusterInfo(t.Context()).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
		slots, err := c.ClusterSlots(t.Context()).Result()
		if err != nil || len(slots) != len(clients) {
			return false
		}
	}
	return true
}

// startSentinel starts a Sentinel that monitors the master at port under
// the name "pg" with a quorum of 1 (one Sentinel decides alone).
func startSentinel(t testing.TB, masterPort int) *server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor pg 127.0.0.1 %d 1\nsentinel down-after-milliseconds pg 2000\n", masterPort)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, &server{
		dir:   dir,
		first: []string{conf, "--sentinel"},
		args:  func(port int) []string { return []string{"--port", strconv.Itoa(port)} },
		ready: "+monitor master pg",
	})
}
