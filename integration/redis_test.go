package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/passgate/passgate/internal/testredis"
)

// Two passgate processes on one real redis-server, a real Dovecot behind
// them: what a load balancer in front of several instances relies on.

// loginStatus logs in over raw IMAP (implicit TLS) and returns the tagged
// status line and how long passgate took to answer the LOGIN. Every read
// has a deadline (ioTimeout), so a hang fails the test instead of
// blocking it.
func loginStatus(t testing.TB, pg *Passgate, user, secret string) (string, time.Duration) {
	t.Helper()
	c, greeting := dialRawTLS(t, pg.IMAPSAddr, pg.tlsConfig(t))
	if !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q", greeting)
	}
	start := time.Now()
	status, _ := c.transact("LOGIN " + quote(user) + " " + quote(secret))
	took := time.Since(start)
	if strings.HasPrefix(status, "OK") {
		c.transact("LOGOUT")
	}
	return status, took
}

// TestRedisSharedInstances: an app password created through instance A
// logs in through B, and revoking it through A ends the IDLE session it
// holds open on B (the delay is logged) and B's cached login.
func TestRedisSharedInstances(t *testing.T) {
	d := sharedDovecot(t)
	a, b := startRedisPair(t, d, testredis.Start(t))
	acct := newAccount(t, d, a, true) // through A's CLI (its control socket)

	c := b.login(t, viaTLS, acct.User, acct.AppPass)
	selectInbox(t, c)
	var list []appPassword
	if err := json.Unmarshal([]byte(b.run(t, "apppass", "list", acct.User, "--json")), &list); err != nil {
		t.Fatalf("apppass list --json on B: %v", err)
	}
	if len(list) != 1 || list[0].ID != acct.AppID {
		t.Fatalf("B lists %+v, want the app password %s created on A", list, acct.AppID)
	}

	other := a.createAppPassword(t, acct.User, "other device")
	victim := idling(t, b, acct.User, acct.AppPass)
	survivor := idling(t, b, acct.User, other.Password)
	start := time.Now()
	a.run(t, "apppass", "revoke", acct.User, acct.AppID)
	returned := time.Now()
	closed := victim.waitClosed(t)
	t.Logf("revocation through A -> IDLE session on B closed %v after the command returned (%v after it started)",
		closed.Sub(returned).Round(time.Microsecond), closed.Sub(start).Round(time.Microsecond))

	survivor.stillOpen(t, "the session of another app password on B")
	for name, pg := range map[string]*Passgate{"A": a, "B": b} {
		if status, _ := loginStatus(t, pg, acct.User, acct.AppPass); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
			t.Errorf("revoked app password through %s: %q, want NO [AUTHENTICATIONFAILED]", name, status)
		}
	}
	assertNoSecrets(t, a.Output()+b.Output(), acct.AppPass, other.Password, acct.Primary, masterSecret)
}

// TestRedisSharedFailureLimit spreads wrong logins for one account over A
// and B: with limits.max_failures_per_account_ip = 5 the sixth, through the
// other instance than the fifth, is refused as rate-limited. Unshared
// counters would have seen three failures on one and two on the other.
func TestRedisSharedFailureLimit(t *testing.T) {
	d := sharedDovecot(t)
	a, b := startRedisPair(t, d, testredis.Start(t), "max_failures_per_account_ip = 5")
	acct := newAccount(t, d, a, true)
	bystander := newAccount(t, d, a, true)

	pgs := []*Passgate{a, b}
	for i := range 10 {
		pg, name := pgs[i%2], string(rune('A'+i%2))
		// A different guess each time: passgate does not count a guess
		// that already failed from the same address twice.
		e := pg.loginError(t, viaTLS, acct.User, fmt.Sprintf("wrong guess %d", i))
		if i < 5 {
			if e.Code != imap.ResponseCodeAuthenticationFailed {
				t.Fatalf("wrong login %d through %s: NO [%s] %s, want [AUTHENTICATIONFAILED]", i+1, name, e.Code, e.Text)
			}
			continue
		}
		if e.Code != imap.ResponseCodeUnavailable || !strings.Contains(e.Text, "Too many failed logins") {
			t.Fatalf("wrong login %d through %s: NO [%s] %s, want [UNAVAILABLE] Too many failed logins", i+1, name, e.Code, e.Text)
		}
	}
	// The block holds on both instances, even for the right password...
	for _, pg := range pgs {
		wantCode(t, pg.loginError(t, viaTLS, acct.User, acct.AppPass), imap.ResponseCodeUnavailable, "Too many failed logins")
	}
	// ...and only for that account from this address.
	b.login(t, viaTLS, bystander.User, bystander.AppPass)
}

// TestRedisOutage stops redis-server under two instances: logins answer
// NO [UNAVAILABLE] quickly (the time is logged), a relayed session keeps
// running, and once redis-server is back on the same port logins work
// again through both instances without restarting passgate.
func TestRedisOutage(t *testing.T) {
	d := sharedDovecot(t)
	r := testredis.Start(t)
	a, b := startRedisPair(t, d, r)
	acct := newAccount(t, d, a, true)
	live := b.login(t, viaTLS, acct.User, acct.AppPass)
	selectInbox(t, live)

	r.StopSaved()
	for _, tc := range []struct {
		name string
		pg   *Passgate
	}{{"A", a}, {"B", b}} {
		// B has the password cached from the live session's login: the
		// answer must not depend on that.
		status, took := loginStatus(t, tc.pg, acct.User, acct.AppPass)
		t.Logf("Redis down: LOGIN through %s answered %q in %v", tc.name, status, took.Round(time.Microsecond))
		if !strings.HasPrefix(status, "NO [UNAVAILABLE]") {
			t.Fatalf("LOGIN through %s with Redis down: %q, want NO [UNAVAILABLE]", tc.name, status)
		}
	}
	if err := live.Noop().Wait(); err != nil {
		t.Fatalf("NOOP in a relayed session while Redis is down: %v", err)
	}
	selectInbox(t, live)

	r.Restart()
	back := time.Now()
	for _, tc := range []struct {
		name string
		pg   *Passgate
	}{{"A", a}, {"B", b}} {
		attempts := waitLogin(t, tc.pg, acct.User, acct.AppPass)
		t.Logf("Redis back: LOGIN through %s works %v after redis-server was ready (attempt %d)",
			tc.name, time.Since(back).Round(time.Microsecond), attempts)
	}
	if err := live.Noop().Wait(); err != nil {
		t.Fatalf("NOOP in the relayed session after the outage: %v", err)
	}
}

// waitLogin logs in through pg until that works, at most closeDeadline,
// and returns the number of attempts. Only NO [UNAVAILABLE] is retried.
func waitLogin(t testing.TB, pg *Passgate, user, secret string) int {
	t.Helper()
	deadline := time.Now().Add(closeDeadline)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		status, _ := loginStatus(t, pg, user, secret)
		switch {
		case strings.HasPrefix(status, "OK"):
			return n
		case !strings.HasPrefix(status, "NO [UNAVAILABLE]"):
			t.Fatalf("LOGIN after Redis came back: %q", status)
		case time.Now().After(deadline):
			t.Fatalf("LOGIN still %q %v after Redis came back", status, closeDeadline)
		}
		<-tick.C
	}
}

// TestRedisNoStaleCacheAfterOutage: B verified (and cached) a login before
// Redis went down; Redis comes back and the password is revoked through A
// at once, possibly before B's event subscription is re-established. B
// must not accept the revoked password from its cache.
func TestRedisNoStaleCacheAfterOutage(t *testing.T) {
	d := sharedDovecot(t)
	r := testredis.Start(t)
	a, b := startRedisPair(t, d, r)
	acct := newAccount(t, d, a, true)
	if status, _ := loginStatus(t, b, acct.User, acct.AppPass); !strings.HasPrefix(status, "OK") {
		t.Fatalf("login through B before the outage: %q", status)
	}

	r.StopSaved()
	r.Restart()
	back := time.Now()
	a.run(t, "apppass", "revoke", acct.User, acct.AppID)
	t.Logf("revoked through A %v after redis-server was ready again", time.Since(back).Round(time.Microsecond))
	status, _ := loginStatus(t, b, acct.User, acct.AppPass)
	if !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("password revoked after the outage, through B (which cached it before), %v after Redis was back: %q, want NO [AUTHENTICATIONFAILED]",
			time.Since(back).Round(time.Microsecond), status)
	}
}
