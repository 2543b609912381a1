package notify

import (
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/internal/wait"
)

// errPermanent marks a failure that trying again will not change.
var errPermanent = errors.New("permanent")

// retry is how a delivery is tried again: at most attempts times, waiting
// backoff before the second try and twice as long before each next one.
type retry struct {
	attempts int
	backoff  time.Duration
	// sleep waits d or until ctx ends; nil: a timer.
	sleep func(ctx context.Context, d time.Duration) error
}

// do runs op until it succeeds, fails with errPermanent, or the attempts
// are spent; it returns op's last error.
func (r retry) do(ctx context.Context, op func() error) error {
	backoff := r.backoff
	for i := 1; ; i++ {
		err := op()
		if err == nil || errors.Is(err, errPermanent) || i >= r.attempts {
			return err
		}
		if serr := r.wait(ctx, backoff); serr != nil {
			return err
		}
		backoff *= 2
	}
}

func (r retry) wait(ctx context.Context, d time.Duration) error {
	if r.sleep != nil {
		return r.sleep(ctx, d)
	}
	return wait.Sleep(ctx, d)
}
