package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// login runs Concurrency clients, each looping connect, greeting, LOGIN,
// LOGOUT and close, for Duration or MaxLogins logins in all. The figure is
// successful logins per second; work is in thousands of logins.
func (r *runner) login(ctx context.Context, t Target, addr string, tlsConf *tls.Config) (sample, error) {
	cmd, err := loginCommand(t.User, t.Secret)
	if err != nil {
		return sample{}, err
	}
	var (
		budget       atomic.Int64
		ok, failed   atomic.Int64
		firstErr     error
		firstErrOnce sync.Once
		wg           sync.WaitGroup
	)
	budget.Store(int64(r.cfg.MaxLogins))
	start := time.Now()
	deadline := start.Add(r.cfg.Duration)
	for range r.cfg.Concurrency {
		wg.Go(func() {
			c := newIMAPConn(4096, r.cfg.IOTimeout)
			for time.Now().Before(deadline) && ctx.Err() == nil && budget.Add(-1) >= 0 {
				err := c.login(ctx, addr, tlsConf, cmd)
				if err == nil {
					err = c.logout()
				}
				if err == nil {
					ok.Add(1)
					continue
				}
				firstErrOnce.Do(func() { firstErr = err })
				// A target that refuses everything ends the run early
				// instead of spinning.
				if f := failed.Add(1); f > 100 && f > ok.Load() {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := ok.Load()
	if n == 0 {
		return sample{}, fmt.Errorf("no login succeeded (%d failed): %w", failed.Load(), firstErr)
	}
	rate := float64(n) / elapsed.Seconds()
	s := sample{values: []float64{rate}, work: float64(n) / 1000,
		note: fmt.Sprintf("%.0f logins/s (%d in %.1fs)", rate, n, elapsed.Seconds())}
	if f := failed.Load(); f > 0 {
		s.warning = fmt.Sprintf("%d of %d logins failed, first: %v", f, n+f, firstErr)
	}
	return s, nil
}
