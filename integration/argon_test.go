package integration

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDefaultArgonLoginTime logs in through passgate with its default argon2id
// parameters (m=19456 KiB, t=2) and logs the wall time of each login, from
// sending LOGIN to the tagged OK (which includes the upstream login). It
// asserts no threshold: the figure is for the report.
func TestDefaultArgonLoginTime(t *testing.T) {
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{DefaultArgon: true, AllowCleartext: true})
	a := newAccount(t, d, pg, true)

	const logins = 5
	var times []time.Duration
	for range logins {
		c, _ := dialRaw(t, pg.IMAPAddr)
		start := time.Now()
		status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote(a.AppPass))
		took := time.Since(start)
		if !strings.HasPrefix(status, "OK") {
			t.Fatalf("LOGIN: %q", status)
		}
		times = append(times, took)
		c.transact("LOGOUT")
	}
	c, _ := dialRaw(t, pg.IMAPAddr)
	start := time.Now()
	status, _ := c.transact("LOGIN " + quote(a.User) + " " + quote("wrong wrong wrong wrong"))
	failed := time.Since(start)
	if !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("LOGIN with a wrong secret: %q", status)
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	t.Logf("login through passgate with default argon2id: median %v, min %v, max %v over %d logins (%v); a wrong secret took %v",
		sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1], logins, times, failed)
}
