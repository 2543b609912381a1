// Package testleak checks that tests leave no goroutine behind, with the
// patience a loaded machine needs: goleak v1.3.0 gives goroutines about
// 0.43 s to end (20 retries, sleeps capped at 100 ms, not configurable),
// which a busy CI machine can exceed for a goroutine that is ending
// normally (a closed connection's reader not yet scheduled).
package testleak

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Patience is how long Find waits for goroutines to end before it reports
// them. A real leak costs a failing run this much time, no more.
const Patience = 30 * time.Second

// Find is goleak.Find, retried until no unexpected goroutine is left or
// Patience has passed; the error is the last attempt's.
func Find(opts ...goleak.Option) error {
	deadline := time.Now().Add(Patience)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// VerifyTestMain runs the package's tests and, if they passed, fails the
// run when goroutines are left (as goleak.VerifyTestMain, with Find's
// patience).
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "testleak: goroutines left after a successful run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
