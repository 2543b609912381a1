//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// canPool: idle reports for sure whether a pooled connection is usable.
const canPool = true

// idle reports whether c (a TCP connection with no deadline passed) is
// open with nothing to read: a peek that does not block and consumes
// nothing. Pending bytes, the upstream's close or an error all say no.
func idle(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readability
	})
	return err == nil && (errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK))
}
