package redis_test

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/redis"
)

// TestAuditBeforeTheSplit: records that an older passgate wrote (bare
// JSON in the one list) still read back, as older than every new record,
// and failures now go to their own capped list.
func TestAuditBeforeTheSplit(t *testing.T) {
	mr := miniredis.RunT(t)
	s := open(t, redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: "pg"})
	setup(t, s)
	for _, r := range []string{"ok", "bad-secret"} { // oldest first
		if _, err := mr.Lpush("pg:{u:alice}:audit", `{"time":"2025-03-01T12:00:00Z","protocol":"imap","username":"alice","result":"`+r+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	for i := range store.AuditKeep + 5 {
		rec := store.AuditRecord{Time: time.Unix(int64(i), 0), Protocol: "imap", Username: "alice", Result: "bad-secret"}
		if err := s.AppendAudit(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(t.Context(), store.AuditRecord{Time: time.Unix(1000, 0), Protocol: "imap", Username: "alice", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.RecentAudit(t.Context(), "alice", store.AuditMax)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != store.AuditKeep+3 {
		t.Fatalf("%d records, want %d", len(recs), store.AuditKeep+3)
	}
	if recs[0].Time.Unix() != 1000 || recs[1].Time.Unix() != store.AuditKeep+4 {
		t.Errorf("newest: %+v, %+v", recs[0], recs[1])
	}
	if last := recs[len(recs)-2:]; last[0].Result != "bad-secret" || last[1].Result != "ok" || last[1].Time.Year() != 2025 {
		t.Errorf("the records from before the split: %+v", last)
	}
	if n, _ := mr.List("pg:{u:alice}:auditfail"); len(n) != store.AuditKeep {
		t.Errorf("failure list of %d elements, want %d", len(n), store.AuditKeep)
	}
}
