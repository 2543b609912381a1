//go:build unix

package main

import "syscall"

// openFileLimit is the soft RLIMIT_NOFILE; ok is false if unknown.
func openFileLimit() (soft uint64, ok bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
