// Package storetest is the conformance suite every store.Store backend must
// pass.
//
// A backend's test calls Run with an Opener:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Opener{
//			New:    func(t *testing.T) store.Store { ... },
//			Reopen: func(t *testing.T, s store.Store) store.Store { ... },
//		})
//	}
//
// Every subtest gets a fresh, empty store. Events are awaited with a
// generous deadline, never with sleeps; "no event" is checked by making a
// marker change afterwards and expecting the marker's event first.
package storetest

import (
	"testing"

	"github.com/passgate/passgate/store"
)

// Opener makes the stores the suite tests.
type Opener struct {
	// New returns a new, empty store and arranges for it to be closed when
	// the test ends (t.Cleanup). Required.
	New func(t *testing.T) store.Store
	// Reopen closes s and returns a store over the same data, as a restart
	// would. Nil if the backend cannot reopen: the reopen test is skipped.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the whole suite against the stores o makes.
func Run(t *testing.T, o Opener) {
	t.Helper()
	if o.New == nil {
		t.Fatal("storetest: Opener.New is nil")
	}
	suites := []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"Accounts", testAccounts},
		{"AppPasswords", testAppPasswords},
		{"Revoke", testRevoke},
		{"RevokeAll", testRevokeAll},
		{"Touch", testTouch},
		{"LookupKey", testLookupKey},
		{"Events", testEvents},
		{"EventsLost", testEventsLost},
		{"CheckSessions", testCheckSessions},
		{"Concurrency", testConcurrency},
		{"Devices", testDevices},
		{"Reopen", testReopen},
	}
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) { s.run(t, o) })
	}
}
