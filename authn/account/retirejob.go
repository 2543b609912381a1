package account

import (
	"context"
	"log/slog"
	"time"
)

// DefaultRetireInterval is how often RunRetirement applies the policy when
// its interval is zero.
const DefaultRetireInterval = time.Hour

// RunRetirement applies s.Retire as SystemRetire at once and then every
// interval (zero: DefaultRetireInterval) until ctx is done: the job of
// passgate serve. A failed run is logged and the next one tries again.
// It returns at once if the policy is off.
func RunRetirement(ctx context.Context, s *Service, interval time.Duration) {
	if !s.Retire.On() {
		return
	}
	if interval <= 0 {
		interval = DefaultRetireInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := s.RetireUnused(ctx, SystemRetire, false)
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger().ErrorContext(ctx, "retire unused app passwords", "err", err)
		case err == nil && len(rep.Retired)+len(rep.Warned) > 0:
			s.logger().InfoContext(ctx, "retired unused app passwords", slog.Int("retired", len(rep.Retired)),
				slog.Int("warned", len(rep.Warned)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
