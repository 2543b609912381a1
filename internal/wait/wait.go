// Package wait sleeps with a context: the one way passgate waits out a
// delay (a tarpit, a retry's backoff) that must end when the work is
// cancelled.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done: then it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
