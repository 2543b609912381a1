package authn

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/store/memcount"
)

// TestMeasureRepeatedWrongPasswordAttack measures issue 9 item 1's attack
// in process, at DefaultParams: 40 connections from one address repeating
// one wrong password as fast as they can (an attacker does not wait for
// the tarpit: it drops the connection and opens another), while another
// user logs in with an app password from elsewhere (no cache, so every
// login of hers costs its argon2id). It logs the argon2id evaluations per
// second that the attacking address causes and the legitimate login's
// latency before and during the attack. Figures only, no thresholds.
func TestMeasureRepeatedWrongPasswordAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement: a few seconds of argon2id at default parameters")
	}
	const (
		conns  = 40
		attack = 2 * time.Second
	)
	ctx := context.Background()
	v := &Verifier{Store: newMemStore(), Logger: slog.New(slog.DiscardHandler)}
	if err := createAccount(ctx, v, alice, "Alice Primary 1", false); err != nil {
		t.Fatal(err)
	}
	if err := createAccount(ctx, v, bob, "", false); err != nil {
		t.Fatal(err)
	}
	np, err := createAppPassword(ctx, v, bob, "laptop", nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	g := &Guard{Verifier: v, Counters: &memcount.Counters{}, Logger: slog.New(slog.DiscardHandler),
		Sleep: func(context.Context, time.Duration) error { return nil }}
	legit := func() time.Duration {
		a := attempt(bob, np.Password)
		a.RemoteIP = netip.MustParseAddr("198.51.100.20")
		start := time.Now()
		d, err := g.Verify(ctx, a)
		if err != nil || d.Result != OK {
			t.Fatalf("legitimate login: %v, %v", d.Result, err)
		}
		return time.Since(start)
	}
	var quiet []time.Duration
	for range 5 {
		quiet = append(quiet, legit())
	}

	t.Logf("legitimate app-password login (argon2id m=%d KiB t=%d), no attack: median %v (%d logins)",
		DefaultParams.MemoryKiB, DefaultParams.Time, median(quiet), len(quiet))
	// Unpaced: each connection sends its next attempt as soon as the last
	// one is answered (the worst case: CPU-bound bookkeeping). Paced: each
	// sends one attempt per 20 ms, 2000/s in all.
	for _, pace := range []time.Duration{0, 20 * time.Millisecond} {
		stop := make(chan struct{})
		var attempts atomic.Int64
		var wg sync.WaitGroup
		before := v.HashEvaluations()
		for range conns {
			wg.Go(func() {
				a := attempt(alice, "Summer2025!")
				a.RemoteIP = netip.MustParseAddr("203.0.113.9")
				for {
					select {
					case <-stop:
						return
					default:
					}
					g.Verify(ctx, a)
					attempts.Add(1)
					time.Sleep(pace)
				}
			})
		}
		var during []time.Duration
		deadline := time.Now().Add(attack)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			during = append(during, legit())
		}
		close(stop)
		wg.Wait()
		hashes := v.HashEvaluations() - before - int64(len(during))
		t.Logf("attack, %d connections from one address repeating one wrong password, pace %v, for %v: %d attempts, %d argon2id = %.1f hashes/s; legitimate login meanwhile: median %v, max %v (%d logins)",
			conns, pace, attack, attempts.Load(), hashes, float64(hashes)/attack.Seconds(),
			median(during), slices.Max(during).Round(time.Millisecond), len(during))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
