package proxy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Go's defaults for an accepted connection (net/dial.go:
// defaultTCPKeepAliveIdle, Interval and Count).
const (
	keepAliveIdleSeconds     = 15
	keepAliveIntervalSeconds = 15
	keepAliveCount           = 9
)

// listenConfig sets keepalive on the listening socket, which Linux copies
// to each accepted socket (tcp_create_openreq_child), and tells net not to
// set it again per connection (KeepAlive < 0).
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAlive: -1, Control: inheritKeepAlive}
}

func inheritKeepAlive(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		for _, o := range []struct{ level, name, value int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdleSeconds},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveIntervalSeconds},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.name, o.value); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
