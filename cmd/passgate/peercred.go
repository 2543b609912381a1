//go:build unix

package main

import (
	"errors"
	"fmt"
	"net"
)

// peerUID is the uid of the process at the other end of a Unix socket, as
// the kernel recorded it when that process connected.
func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, errors.New("peer credentials: not a Unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var uid uint32
	var uidErr error
	if err := raw.Control(func(fd uintptr) { uid, uidErr = sockPeerUID(int(fd)) }); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if uidErr != nil {
		return 0, fmt.Errorf("peer credentials: %w", uidErr)
	}
	return uid, nil
}
