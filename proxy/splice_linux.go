package proxy

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// queued waits, through the runtime poller and holding no pipe or buffer,
// until src is readable, and returns how many bytes it holds (0 at EOF).
// Splice then moves exactly those: a splice(2) call that waited for more
// would hold a pipe (two file descriptors) for as long as the session
// idles, doubling what each parked session costs in open files.
func queued(src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ioErr error
	var peek [1]byte
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			if ioErr != nil || n > 0 {
				return true
			}
			// Nothing queued: not yet (wait), EOF (a zero-byte peek),
			// or bytes that arrived since the ioctl (count them again).
			var m int
			m, _, ioErr = unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			switch {
			case ioErr == unix.EAGAIN:
				return false
			case ioErr == unix.EINTR, ioErr == nil && m > 0:
				continue
			}
			return true
		}
	})
	if err == nil && ioErr != nil {
		err = fmt.Errorf("poll %s: %w", src.RemoteAddr(), ioErr)
	}
	return int64(n), err
}
