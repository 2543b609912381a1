package integration

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDefaultArgonLoginTime logs in through passgate with its default argon2id
// parameters (m=19456 KiB, t=2) and logs the wall time of each login, from
// sending LOGIN to the tagged OK (which includes the upstream login): with
// the verified-login cache off (every login pays argon2id) and on (the
// reconnects of a client that logged in already). It asserts no threshold:
// the figures are for the report.
func TestDefaultArgonLoginTime(t *testing.T) {
	d := sharedDovecot(t)
	for _, cache := range []bool{false, true} {
		pg := startPassgate(t, d, passgateOpts{DefaultArgon: true, AllowCleartext: true, NoAuthCache: !cache})
		a := newAccount(t, d, pg, true)
		times := timeLogins(t, pg, a.User, a.AppPass, 6)
		c, _ := dialRaw(t, pg.IMAPAddr)
		start := time.Now()
		status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote("wrong wrong wrong wrong"))
		failed := time.Since(start)
		if !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("LOGIN with a wrong secret: %q", status)
		}
		sorted := slices.Clone(times[1:]) // the first login always pays argon2id
		slices.Sort(sorted)
		t.Logf("cache %v: first login %v; logins 2-%d median %v (min %v, max %v); a wrong secret %v",
			cache, times[0], len(times), sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1], failed)
	}
}

// timeLogins logs in n times on fresh connections and returns how long each
// LOGIN took.
func timeLogins(t *testing.T, pg *Passgate, user, pass string, n int) []time.Duration {
	t.Helper()
	var times []time.Duration
	for range n {
		c, _ := dialRaw(t, pg.IMAPAddr)
		start := time.Now()
		status, _ := c.transact("LOGIN " + quote(user) + " " + quote(pass))
		times = append(times, time.Since(start))
		if !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN: %q", status)
		}
		c.transact("LOGOUT")
	}
	return times
}
