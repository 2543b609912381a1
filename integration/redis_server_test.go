package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testlog"
)

// redisReadyWait bounds how long redis-server may take to start.
const redisReadyWait = 20 * time.Second

// redisServer is a redis-server process that a test started on 127.0.0.1
// and a free port, without automatic persistence (--save "", no AOF). It is
// stopped by its PID.
type redisServer struct {
	Port int

	t    testing.TB
	path string
	dir  string // working directory: dump.rdb of stop(true)
	out  *testlog.Buffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedisServer starts redis-server for the test; it is stopped when
// the test ends, and its output printed if the test failed. Without
// redis-server the test is skipped, or fails when CI=true.
func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	path, err := toolPath("redis-server")
	if err != nil {
		missing(t, fmt.Sprintf("redis-server not found (install the Debian package redis-server): %v", err))
	}
	r := &redisServer{t: t, path: path, dir: t.TempDir(), out: new(testlog.Buffer)}
	t.Cleanup(func() {
		r.stop(false)
		if t.Failed() {
			t.Logf("--- redis-server output ---\n%s", r.out)
		}
	})
	for range 3 {
		r.Port = freePort(t)
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("redis-server does not start: %v", err)
	return nil
}

// URL is the server's redis:// URL.
func (r *redisServer) URL() string { return "redis://" + addr(r.Port) }

// start runs the process on r.Port and waits until it accepts connections.
// A dump.rdb left in r.dir by stop(true) is loaded.
func (r *redisServer) start() error {
	cmd := exec.Command(r.path, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", "", "--daemonize", "no")
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
			fmt.Fprintln(r.out, sc.Text())
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				once()
			}
		}
		cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("redis-server on port %d exited at start (port taken?)", r.Port)
	case <-time.After(redisReadyWait):
		r.stop(false)
		return fmt.Errorf("redis-server not ready after %v", redisReadyWait)
	}
}

// stop ends the process by its PID (SIGTERM, SIGKILL after 10 s) and
// waits for it. With save, Redis first writes its data to disk (SAVE), so
// that restart brings it back as a persistent Redis's restart would.
// Stopping a stopped server does nothing.
func (r *redisServer) stop(save bool) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	if save {
		if err := r.command("SAVE"); err != nil {
			r.t.Errorf("redis SAVE: %v", err)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// restart starts the server again on the same port.
func (r *redisServer) restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server on port %d: %v", r.Port, err)
	}
}

// command sends one argument-less command and expects +OK (RESP2).
func (r *redisServer) command(name string) error {
	conn, err := net.DialTimeout("tcp", addr(r.Port), ioTimeout)
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

// useRedis points pg's configuration (serve not started yet) at r, adding
// limits lines to [limits].
func useRedis(t testing.TB, pg *Passgate, r *redisServer, limits ...string) {
	t.Helper()
	useRedisURL(t, pg, r.URL(), limits...)
}

// useRedisURL is useRedis with the Redis at url.
func useRedisURL(t testing.TB, pg *Passgate, url string, limits ...string) {
	t.Helper()
	b, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, anchor := range []string{"\n[store]\n", "\n[limits]\n"} {
		if strings.Count(conf, anchor) != 1 {
			t.Fatalf("passgate config: want one %q to edit", strings.TrimSpace(anchor))
		}
	}
	conf = strings.Replace(conf, "\n[store]\n", "\n[store]\nbackend = \"redis\"\n", 1)
	conf = strings.Replace(conf, "\n[limits]\n", fmt.Sprintf("\n[store.redis]\nurl = %q\n\n[limits]\n%s",
		url, strings.Join(append(limits, ""), "\n")), 1)
	if err := os.WriteFile(pg.ConfFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startRedisPair starts two passgate instances in front of d that share r,
// each with its own configuration, ports and control socket.
func startRedisPair(t testing.TB, d *Dovecot, r *redisServer, limits ...string) (a, b *Passgate) {
	t.Helper()
	a, b = newPassgate(t, d, passgateOpts{}), newPassgate(t, d, passgateOpts{})
	for _, pg := range []*Passgate{a, b} {
		useRedis(t, pg, r, limits...)
		pg.serve(t)
	}
	return a, b
}
