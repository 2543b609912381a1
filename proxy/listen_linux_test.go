package proxy

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenAcceptedKeepAlive: a connection accepted by Listen has the
// same TCP keepalive and TCP_NODELAY as one accepted by net.Listen, so a
// client that vanishes without a FIN is still found out by the same
// probes, although Listen sets them once on the listening socket.
func TestListenAcceptedKeepAlive(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ours, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	want := acceptedSockopts(t, plain)
	if want[1] != 1 {
		t.Fatalf("net.Listen's accepted connection: SO_KEEPALIVE %d, want 1 (did Go's default change?)", want[1])
	}
	if got := acceptedSockopts(t, ours); got != want {
		t.Errorf("Listen's accepted connection: [TCP_NODELAY SO_KEEPALIVE TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT] = %v, net.Listen's %v", got, want)
	}
}

// acceptedSockopts dials ln, accepts, and reads the accepted socket's
// TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT.
func acceptedSockopts(t *testing.T, ln net.Listener) (v [5]int) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	rc, err := ac.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var gerr error
	rc.Control(func(fd uintptr) {
		for i, o := range [][2]int{
			{unix.IPPROTO_TCP, unix.TCP_NODELAY},
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
		} {
			if v[i], gerr = unix.GetsockoptInt(int(fd), o[0], o[1]); gerr != nil {
				return
			}
		}
	})
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}
