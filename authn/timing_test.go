package authn

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// timingParams make argon2id dominate a Verify (milliseconds against
// microseconds of map lookups) while 2 cores run the test in about a second.
var timingParams = Params{MemoryKiB: 4096, Time: 1, Threads: 1}

// timingRounds is how many times each class runs, after timingWarmup
// discarded rounds. Every round runs each class once, in a fresh random
// order.
const (
	timingRounds = 60
	timingWarmup = 3
)

// rankSigmas is how far, in standard deviations, a class's mean rank may
// stray from the middle before the test calls the classes distinguishable.
// At 5 a false alarm needs a one-in-a-million streak of bad luck; a class
// that is really faster or slower comes first or last in nearly every round
// and strays by 10 or more.
const rankSigmas = 5

// failureClass is a kind of failed login, timed as a client sees it.
type failureClass struct {
	name    string
	attempt Attempt
	want    Result
}

// TestFailureTimingIndistinguishable: an unknown user, a wrong secret and a
// disabled account cost the same time, so that timing does not tell an
// attacker which accounts exist or are disabled (DESIGN.md "Secrets").
//
// The statistic is a rank test (Friedman's): in every round each class runs
// once, close together in time, and the classes are ranked by duration
// (1 = fastest). Whatever load the machine is under hits the calls of a
// round alike, and an outlier counts as one rank, not as its milliseconds,
// so noise cannot push a class's mean rank far from the middle; a class
// that skips or adds work moves it to an end. A control class that skips
// the hash shows that the check catches a missing dummy hash.
func TestFailureTimingIndistinguishable(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test: about a second of argon2id")
	}
	ctx := context.Background()
	st := newMemStore()
	v := &Verifier{Store: st, Params: timingParams}
	for _, u := range []string{alice, carol} {
		if err := createAccount(ctx, v, u, "Primary Password 1", false); err != nil {
			t.Fatal(err)
		}
	}
	if err := createAccount(ctx, v, dave, "", false); err != nil { // app passwords only
		t.Fatal(err)
	}
	carolPW, err := createAppPassword(ctx, v, carol, "phone", store.AllScopes, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateAccount(ctx, carol, func(a *store.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	guess, err := GenerateAppPassword()
	if err != nil {
		t.Fatal(err)
	}
	classes := []failureClass{
		{"unknown user", attempt("mallory@example.com", guess), UnknownUser},
		{"wrong secret", attempt(alice, guess), BadSecret},
		{"wrong secret, no primary password", attempt(dave, guess), BadSecret},
		{"disabled account, right app password", attempt(carol, carolPW.Password), Disabled},
	}
	// The control does what an unknown-user login does, minus the hash.
	control := func() {
		if name, err := store.NormalizeUsername("mallory@example.com"); err == nil {
			st.GetAccount(ctx, name)
		}
	}
	names := []string{"control (no hash)"}
	for _, c := range classes {
		names = append(names, c.name)
	}

	// samples[i][r]: class i (0 = control) in round r.
	samples := make([][]time.Duration, len(names))
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	for round := range timingWarmup + timingRounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			start := time.Now()
			if i == 0 {
				control()
			} else {
				c := classes[i-1]
				d, err := v.Verify(ctx, c.attempt)
				if err != nil || d.Result != c.want {
					t.Fatalf("%s: Verify = %+v, %v; want %s", c.name, d, err, c.want)
				}
			}
			if round >= timingWarmup {
				samples[i] = append(samples[i], time.Since(start))
			}
		}
	}

	ranks, mid, tol := meanRanks(samples[1:])
	for i, s := range samples {
		line := "      -     "
		if i > 0 {
			line = fmt.Sprintf("mean rank %.2f", ranks[i-1])
		}
		t.Logf("%-38s %s  time median %8v  p25 %8v  p75 %8v", names[i], line,
			quantile(s, 0.5).Round(time.Microsecond), quantile(s, 0.25).Round(time.Microsecond),
			quantile(s, 0.75).Round(time.Microsecond))
	}
	t.Logf("mean ranks must be within %.2f of %.1f (%d sigmas over %d rounds)", tol, mid, rankSigmas, timingRounds)
	for i, r := range ranks {
		if math.Abs(r-mid) > tol {
			t.Errorf("%s: mean rank %.2f, more than %.2f from %.1f: it is consistently faster or slower than the other failures",
				classes[i].name, r, tol, mid)
		}
	}
	// The same check, with the control among the classes, must single it
	// out.
	all, mid, tol := meanRanks(samples)
	if math.Abs(all[0]-mid) <= tol {
		t.Errorf("the check does not single out a login without a hash (mean rank %.2f): it would miss a skipped dummy hash", all[0])
	}
}

// meanRanks ranks the classes within each round (1 = fastest) and returns
// each class's mean rank, the mean rank expected when durations do not
// depend on the class, and the tolerance: rankSigmas standard deviations
// of a mean of that many uniformly random ranks.
func meanRanks(samples [][]time.Duration) (ranks []float64, mid, tol float64) {
	k, n := len(samples), len(samples[0])
	ranks = make([]float64, k)
	idx := make([]int, k)
	for r := range n {
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(samples[a][r], samples[b][r]) })
		for rank, i := range idx {
			ranks[i] += float64(rank + 1)
		}
	}
	for i := range ranks {
		ranks[i] /= float64(n)
	}
	mid = float64(k+1) / 2
	tol = rankSigmas * math.Sqrt(float64(k*k-1)/12/float64(n))
	return ranks, mid, tol
}

// quantile returns the q-quantile of s (nearest rank).
func quantile(s []time.Duration, q float64) time.Duration {
	s = slices.Clone(s)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
