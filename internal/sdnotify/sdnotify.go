// Package sdnotify tells systemd about the service's state (sd_notify(3))
// for units with Type=notify: READY=1 once the listeners accept,
// RELOADING=1 then READY=1 around a reload, STOPPING=1 at shutdown.
//
//	sdnotify.Ready()     // after every listener is bound
//	sdnotify.Reloading() // before re-reading the configuration
//	sdnotify.Ready()     // when the new configuration is in use (or refused)
//
// Outside systemd (NOTIFY_SOCKET unset) every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Ready says the service is up (READY=1).
func Ready() error { return Notify("READY=1") }

// Reloading says a reload began (RELOADING=1 with the MONOTONIC_USEC that
// systemd 253 and later require); send Ready when it is over.
func Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	usec := ts.Nano() / 1000
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping says the service is shutting down (STOPPING=1).
func Stopping() error { return Notify("STOPPING=1") }

// Notify sends state, newline-separated KEY=VALUE assignments, to the
// socket in $NOTIFY_SOCKET; without one it does nothing. An abstract
// socket is written with a leading "@".
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
