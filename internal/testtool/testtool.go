// Package testtool finds the external programs that tests drive (slapd,
// dovecot ...) and picks free ports: a test whose program is missing is
// skipped, or fails when CI=true, because CI must install it.
package testtool

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// OnCI reports whether missing components must fail the run instead of
// skipping the test.
func OnCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it when CI=true.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if OnCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Require returns the path of the program name, looked up on PATH and then
// in /usr/sbin and /sbin (where Debian puts daemons). When it is missing the
// test is skipped (fails when CI=true), naming the Debian package aptPkg.
func Require(t testing.TB, name, aptPkg string) string {
	t.Helper()
	path, err := Path(name)
	if err != nil {
		Missing(t, fmt.Sprintf("%s not found (install the Debian package %s): %v", name, aptPkg, err))
	}
	return path
}

// Path finds a program on PATH or in /usr/sbin and /sbin.
func Path(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil || filepath.IsAbs(name) {
		return path, err
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, serr := exec.LookPath(filepath.Join(dir, name)); serr == nil {
			return p, nil
		}
	}
	return "", err
}

// RequireRoot skips the test (fails it when CI=true) unless it runs as root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "must run as root: "+why)
	}
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago, for a server that takes its ports from a configuration file. All n
// listeners are held open until every port is chosen, so the kernel cannot
// hand out one port twice (Dovecot refuses a "duplicate listener").
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ClosedAddr returns a 127.0.0.1 address where nothing listens (a port
// that was free a moment ago), for tests of a server that is down.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
