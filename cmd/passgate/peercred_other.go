//go:build unix && !linux && !darwin && !freebsd

package main

import "errors"

// sockPeerUID is not implemented here: the control socket refuses every
// connection, so the CLI needs serve stopped to change the store.
func sockPeerUID(int) (uint32, error) {
	return 0, errors.New("not implemented on this system")
}
