//go:build !linux

package proxy

import "time"

// parkSupported: silent directions keep their goroutines here.
const parkSupported = false

// parking is empty where sessions are not parked.
type parking struct{}

// park never parks: the direction waits in the runtime poller.
func (d *direction) park(time.Time) bool { return false }

// parkAtStart never parks: the direction starts on its goroutine.
func (d *direction) parkAtStart() bool { return false }

// wake has nothing to resume.
func (d *direction) wake() {}

// ParkedDirections is how many relay directions are parked: none here.
func ParkedDirections() int { return 0 }
