package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// idle samples the memory of the target's process tree, logs in Sessions
// sessions (OpenConcurrency at a time) and leaves them idle, waits Settle,
// samples again and checks every session with NOOP. The sessions stay open
// until release, so that the target's next idle measurement counts only
// its own sessions' memory, not memory these freed. The figures are the
// growth of PSS and of RSS per session, in KiB.
func (r *runner) idle(ctx context.Context, t Target, addr string, tlsConf *tls.Config) (sample, error) {
	cmd, err := loginCommand(t.User, t.Secret)
	if err != nil {
		return sample{}, err
	}
	before, err := memoryKiB(t.PID)
	if err != nil {
		return sample{}, err
	}
	conns := make([]*imapConn, r.cfg.Sessions)
	defer func() { // on errors
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	var (
		failed   atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
		sem      = make(chan struct{}, r.cfg.OpenConcurrency)
	)
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			c := newIMAPConn(1024, r.cfg.IOTimeout)
			if err := c.login(ctx, addr, tlsConf, cmd); err != nil {
				failed.Add(1)
				once.Do(func() { firstErr = err })
				return
			}
			c.nc.SetDeadline(time.Time{}) // idle: no deadline while parked
			conns[i] = c
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return sample{}, fmt.Errorf("%d of %d sessions did not log in, first: %w", f, len(conns), firstErr)
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	select {
	case <-time.After(r.cfg.Settle):
	case <-ctx.Done():
		return sample{}, ctx.Err()
	}
	after, err := memoryKiB(t.PID)
	if err != nil {
		return sample{}, err
	}
	k := float64(len(conns))
	dead := noopAll(conns, r.cfg.OpenConcurrency)
	r.held = append(r.held, conns...)
	conns = nil
	if dead > 0 {
		return sample{}, fmt.Errorf("%d of %.0f idle sessions did not answer NOOP", dead, k)
	}
	pss, rss := float64(after.pss-before.pss)/k, float64(after.rss-before.rss)/k
	return sample{values: []float64{pss, rss},
		note: fmt.Sprintf("PSS %d → %d KiB, RSS %d → %d KiB (%d → %d processes): %.1f KiB PSS per session",
			before.pss, after.pss, before.rss, after.rss, before.procs, after.procs, pss)}, nil
}

// noopAll sends NOOP on every session, conc at a time, and returns how
// many did not answer OK.
func noopAll(conns []*imapConn, conc int) int {
	var dead atomic.Int64
	forAll(conns, conc, func(c *imapConn) {
		if err := c.command([]byte("NOOP"), handler{}); err != nil {
			dead.Add(1)
		}
		c.nc.SetDeadline(time.Time{})
	})
	return int(dead.Load())
}

// release logs out and closes the held idle sessions.
func (r *runner) release() {
	forAll(r.held, r.cfg.OpenConcurrency, func(c *imapConn) {
		if c.nc != nil {
			c.logout()
		}
	})
	r.held = nil
}

// forAll runs f on every connection, conc at a time.
func forAll(conns []*imapConn, conc int, f func(*imapConn)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(c)
		})
	}
	wg.Wait()
}
