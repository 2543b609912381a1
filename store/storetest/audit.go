package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// AuditStore is a backend that keeps the per-account audit log. It is an
// alias, so a func returning the interface literal works as well.
type AuditStore = interface {
	store.Store
	store.AuditLog
}

// RunAuditLog is the conformance suite of store.AuditLog. newStore returns
// a new, empty store (closed by t.Cleanup); the suite creates the accounts
// it needs through the Store half.
func RunAuditLog(t *testing.T, newStore func(t *testing.T) AuditStore) {
	t.Helper()
	if newStore == nil {
		t.Fatal("storetest: RunAuditLog: newStore is nil")
	}
	tests := []struct {
		name string
		run  func(*testing.T, AuditStore)
	}{
		{"NewestFirst", testAuditNewestFirst},
		{"Limit", testAuditLimit},
		{"Cap", testAuditCap},
		{"PerAccount", testAuditPerAccount},
		{"UnknownAccount", testAuditUnknownAccount},
		{"RoundTrip", testAuditRoundTrip},
		{"SurvivesAccountChanges", testAuditSurvives},
		{"Concurrent", testAuditConcurrent},
		{"FailuresKeptApart", testAuditFailuresApart},
		{"Batch", testAuditBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// auditRec is a fixture record of username; seq makes it recognisable.
func auditRec(username string, seq int) store.AuditRecord {
	return store.AuditRecord{
		Time:      t0.Add(time.Duration(seq) * time.Second),
		Protocol:  "imap",
		Username:  username,
		Remote:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(seq)}), 40000),
		Result:    "ok",
		SessionID: fmt.Sprintf("s%04d", seq),
	}
}

func mustAppend(t *testing.T, s store.AuditLog, recs ...store.AuditRecord) {
	t.Helper()
	for _, r := range recs {
		if err := s.AppendAudit(t.Context(), r); err != nil {
			t.Fatalf("AppendAudit(%q, %q): %v", r.Username, r.SessionID, err)
		}
	}
}

// mustAppendN appends auditRec(username, 0..n-1) and returns them.
func mustAppendN(t *testing.T, s store.AuditLog, username string, n int) []store.AuditRecord {
	t.Helper()
	var recs []store.AuditRecord
	for i := range n {
		recs = append(recs, auditRec(username, i))
	}
	mustAppend(t, s, recs...)
	return recs
}

func mustRecent(t *testing.T, s store.AuditLog, username string, n int) []store.AuditRecord {
	t.Helper()
	recs, err := s.RecentAudit(t.Context(), username, n)
	if err != nil {
		t.Fatalf("RecentAudit(%q, %d): %v", username, n, err)
	}
	return recs
}

// sessions returns the SessionIDs of recs, in order.
func sessions(recs []store.AuditRecord) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.SessionID)
	}
	return out
}

// newestFirst returns the SessionIDs of the last n of appended, newest first.
func newestFirst(appended []store.AuditRecord, n int) []string {
	var out []string
	for i := len(appended) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, appended[i].SessionID)
	}
	return out
}

func checkSessions(t *testing.T, what string, got []store.AuditRecord, want []string) {
	t.Helper()
	if g := sessions(got); !reflect.DeepEqual(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s: sessions %q, want %q", what, g, want)
	}
}

func testAuditNewestFirst(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	checkSessions(t, "RecentAudit before any append", mustRecent(t, s, "alice", 10), nil)
	appended := mustAppendN(t, s, "alice", 5)
	checkSessions(t, "RecentAudit", mustRecent(t, s, "alice", 10), newestFirst(appended, 5))
}

func testAuditLimit(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	appended := mustAppendN(t, s, "alice", 7)
	for _, n := range []int{0, 1, 3, 7, 8, store.AuditKeep + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			checkSessions(t, fmt.Sprintf("RecentAudit(n=%d)", n), mustRecent(t, s, "alice", n), newestFirst(appended, n))
		})
	}
}

// testAuditCap appends more than AuditKeep records: exactly the newest
// AuditKeep remain.
func testAuditCap(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	appended := mustAppendN(t, s, "alice", store.AuditKeep+10)
	got := mustRecent(t, s, "alice", store.AuditKeep+10)
	if len(got) != store.AuditKeep {
		t.Fatalf("RecentAudit after %d appends: %d records, want %d", len(appended), len(got), store.AuditKeep)
	}
	checkSessions(t, "RecentAudit after the cap", got, newestFirst(appended, store.AuditKeep))
	// The log keeps rolling: one more append drops the oldest kept one.
	extra := auditRec("alice", 9999)
	mustAppend(t, s, extra)
	got = mustRecent(t, s, "alice", store.AuditKeep+10)
	want := append([]string{extra.SessionID}, newestFirst(appended, store.AuditKeep-1)...)
	checkSessions(t, "RecentAudit after one more", got, want)
}

// testAuditPerAccount interleaves the appends of accounts whose names share
// a prefix; none sees another's records.
func testAuditPerAccount(t *testing.T, s AuditStore) {
	users := []string{"alice", "alice@example.org", "bob"}
	appended := map[string][]store.AuditRecord{}
	for _, u := range users {
		mustCreateAccount(t, s, u)
	}
	for i := range 6 {
		for j, u := range users {
			if i%(j+1) != 0 { // different counts per account
				continue
			}
			r := auditRec(u, i)
			r.SessionID = fmt.Sprintf("%s-%d", u, i)
			mustAppend(t, s, r)
			appended[u] = append(appended[u], r)
		}
	}
	for _, u := range users {
		checkSessions(t, "RecentAudit("+u+")", mustRecent(t, s, u, 100), newestFirst(appended[u], 100))
	}
}

// testAuditUnknownAccount: appends for a username without an account are
// dropped silently, and are not there once the account is created.
func testAuditUnknownAccount(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	mustAppend(t, s, auditRec("mallory", 1), auditRec("mallory", 2))
	_, err := s.RecentAudit(t.Context(), "mallory", 10)
	wantErr(t, "RecentAudit(unknown account)", err, store.ErrNotFound)
	checkSessions(t, "RecentAudit(alice)", mustRecent(t, s, "alice", 10), nil)
	mustCreateAccount(t, s, "mallory")
	checkSessions(t, "RecentAudit(mallory) once created", mustRecent(t, s, "mallory", 10), nil)
}

// testAuditRoundTrip stores records with every field set (and one with
// every optional field empty) and reads them back unchanged.
func testAuditRoundTrip(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	recs := []store.AuditRecord{
		{
			Time:            t0.Add(1500 * time.Millisecond).In(time.FixedZone("CET", 3600)),
			Protocol:        "smtp",
			Username:        "alice",
			Remote:          netip.MustParseAddrPort("[2001:db8::1]:587"),
			TLS:             "TLS 1.3",
			Client:          "Thunderbird/128.0",
			Mechanism:       "PLAIN",
			Result:          "bad-secret",
			AppPasswordID:   "ap1",
			AppPasswordName: "laptop",
			SessionID:       "sess-1",
			Duration:        1234567 * time.Nanosecond,
			Actor:           "root@example.org",
		},
		{Time: t0, Protocol: "portal", Username: "alice", Result: "ok"},
		{
			Time: t0.Add(time.Minute), Protocol: "imap", Username: "alice",
			Remote: netip.MustParseAddrPort("198.51.100.7:993"), Result: "rate-limited",
			Duration: 3 * time.Hour,
		},
	}
	mustAppend(t, s, recs...)
	got := mustRecent(t, s, "alice", 10)
	if len(got) != len(recs) {
		t.Fatalf("RecentAudit: %d records, want %d", len(got), len(recs))
	}
	for i, want := range recs {
		g := got[len(recs)-1-i]
		if !g.Time.Equal(want.Time) {
			t.Errorf("record %d: time %v, want %v", i, g.Time, want.Time)
		}
		g.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
}

// testAuditSurvives: revoking app passwords, disabling the account and
// turning on MFA keep the log, and a disabled account is still audited.
func testAuditSurvives(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	mustCreateAppPasswords(t, s, "alice", 2)
	appended := mustAppendN(t, s, "alice", 3)
	if _, err := s.RevokeAllAppPasswords(t.Context(), []string{"alice"}); err != nil {
		t.Fatalf("RevokeAllAppPasswords: %v", err)
	}
	err := s.UpdateAccount(t.Context(), "alice", func(a *store.Account) error {
		a.Disabled, a.MFA = true, true
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	checkSessions(t, "RecentAudit after revoke and disable", mustRecent(t, s, "alice", 10), newestFirst(appended, 10))
	r := auditRec("alice", 50)
	r.Result = "disabled"
	mustAppend(t, s, r)
	appended = append(appended, r)
	checkSessions(t, "RecentAudit of a disabled account", mustRecent(t, s, "alice", 10), newestFirst(appended, 10))
}

// testAuditConcurrent appends from 8 goroutines at once: 20 records each
// to alice (more than AuditKeep in all) and 5 each to bob (fewer). Bob
// keeps every record; alice exactly AuditKeep, and of each goroutine the
// newest ones, in the order it appended them.
func testAuditConcurrent(t *testing.T, s AuditStore) {
	const workers, perAlice, perBob = 8, 20, 5
	mustCreateAccount(t, s, "alice")
	mustCreateAccount(t, s, "bob")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perAlice {
				for _, u := range []string{"alice", "bob"} {
					if u == "bob" && i >= perBob {
						continue
					}
					r := auditRec(u, i)
					r.SessionID = fmt.Sprintf("w%d-%02d", w, i)
					if err := s.AppendAudit(t.Context(), r); err != nil {
						t.Errorf("AppendAudit(%q, %q): %v", u, r.SessionID, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, tc := range []struct {
		user     string
		per, all int
	}{
		{"bob", perBob, workers * perBob},
		{"alice", perAlice, store.AuditKeep},
	} {
		got := mustRecent(t, s, tc.user, 1000)
		if len(got) != tc.all {
			t.Fatalf("%s: %d records after %d appends, want %d", tc.user, len(got), workers*tc.per, tc.all)
		}
		// Newest first: each worker's records appear with falling i, and
		// they are its last ones (a dropped record is older than every
		// kept one).
		next := map[int]int{} // worker -> the i expected next
		for w := range workers {
			next[w] = tc.per - 1
		}
		for _, r := range got {
			var w, i int
			if _, err := fmt.Sscanf(r.SessionID, "w%d-%d", &w, &i); err != nil || r.Username != tc.user {
				t.Fatalf("%s: unexpected record %+v", tc.user, r)
			}
			if i != next[w] {
				t.Fatalf("%s: record %q, want w%d-%02d next (order %q)", tc.user, r.SessionID, w, next[w], sessions(got))
			}
			next[w]--
		}
	}
}

// testAuditFailuresApart is issue 9 item 13: 110 failed attempts from one
// address must not push the account's own sign-ins and changes out of its
// records. Successes and failures are each capped at AuditKeep, and
// RecentAudit returns both, newest first by time.
func testAuditFailuresApart(t *testing.T, s AuditStore) {
	mustCreateAccount(t, s, "alice")
	var own []store.AuditRecord
	for i := range 5 {
		r := auditRec("alice", i)
		r.SessionID = fmt.Sprintf("own-%d", i)
		if i == 4 {
			r.Protocol, r.Result = "portal", "password-changed" // a change, not a login
		}
		own = append(own, r)
	}
	mustAppend(t, s, own...)
	var attack []store.AuditRecord
	for i := range 110 {
		r := auditRec("alice", 10+i)
		r.Remote = netip.MustParseAddrPort("203.0.113.9:40000")
		r.Result = []string{"bad-secret", "rate-limited", "bad-code"}[i%3]
		r.SessionID = fmt.Sprintf("attack-%03d", i)
		attack = append(attack, r)
	}
	mustAppend(t, s, attack...)
	got := mustRecent(t, s, "alice", 2*store.AuditKeep)
	want := append(newestFirst(attack, store.AuditKeep), newestFirst(own, len(own))...)
	checkSessions(t, "RecentAudit after 110 failures", got, want)
	// The newest n are still the newest n, whichever kind.
	checkSessions(t, "RecentAudit(3)", mustRecent(t, s, "alice", 3), newestFirst(attack, 3))
	// A sign-in after the attack comes first again.
	r := auditRec("alice", 200)
	r.SessionID = "own-after"
	mustAppend(t, s, r)
	checkSessions(t, "RecentAudit(2) after a sign-in", mustRecent(t, s, "alice", 2), []string{"own-after", attack[len(attack)-1].SessionID})
	for _, rec := range got {
		if rec.Failure() != strings.HasPrefix(rec.SessionID, "attack-") {
			t.Errorf("record %q (%s): Failure() = %v", rec.SessionID, rec.Result, rec.Failure())
		}
	}
}

// auditBatcher is the optional batch append of a backend (authn.AuditQueue
// uses it).
type auditBatcher interface {
	AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error
}

// testAuditBatch: one batch of more than AuditKeep records of two accounts,
// failures among them and an unknown user, leaves what appending them one
// by one leaves: each account's newest records of each kind, in order.
func testAuditBatch(t *testing.T, s AuditStore) {
	b, ok := s.(auditBatcher)
	if !ok {
		t.Skip("backend has no AppendAuditBatch")
	}
	mustCreateAccount(t, s, "alice")
	mustCreateAccount(t, s, "bob")
	var recs, alice, bob []store.AuditRecord
	for i := range 2*store.AuditKeep + 30 {
		a := auditRec("alice", i)
		if i%2 == 0 {
			a.Result = "bad-secret"
		}
		recs = append(recs, a, auditRec("nobody", i))
		alice = append(alice, a)
		if i < 7 {
			recs = append(recs, auditRec("bob", i))
			bob = append(bob, auditRec("bob", i))
		}
	}
	if err := b.AppendAuditBatch(t.Context(), recs); err != nil {
		t.Fatalf("AppendAuditBatch: %v", err)
	}
	checkSessions(t, "bob", mustRecent(t, s, "bob", store.AuditMax), newestFirst(bob, store.AuditMax))
	var keep []store.AuditRecord
	kept := map[bool]int{}
	for i := len(alice) - 1; i >= 0; i-- {
		if f := alice[i].Failure(); kept[f] < store.AuditKeep {
			kept[f]++
			keep = append([]store.AuditRecord{alice[i]}, keep...)
		}
	}
	checkSessions(t, "alice", mustRecent(t, s, "alice", store.AuditMax), newestFirst(keep, store.AuditMax))
	if _, err := s.RecentAudit(t.Context(), "nobody", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecentAudit(nobody) = %v, want ErrNotFound", err)
	}
}
