package bolt_test

import (
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAuditLog(t, func(t *testing.T) storetest.AuditStore { return newDB(t) })
}

// rawView closes db and runs fn on its file, opened read-only with bbolt.
func rawView(t *testing.T, db *bolt.DB, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	raw, err := bbolt.Open(db.Path(), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	defer raw.Close()
	if err := raw.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func mustAccount(t *testing.T, db *bolt.DB, username string) {
	t.Helper()
	if err := db.CreateAccount(t.Context(), store.Account{Username: username}); err != nil {
		t.Fatalf("CreateAccount(%q): %v", username, err)
	}
}

func appendAudit(t *testing.T, db *bolt.DB, username string, n int) {
	t.Helper()
	for i := range n {
		rec := store.AuditRecord{Time: time.Unix(int64(i), 0), Protocol: "imap", Username: username, Result: "ok"}
		if err := db.AppendAudit(t.Context(), rec); err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
	}
}

// The cap is applied to the file, not only to what RecentAudit shows, and
// an unknown username leaves no trace in the file.
func TestAuditFile(t *testing.T) {
	db := newDB(t)
	mustAccount(t, db, "alice")
	appendAudit(t, db, "alice", store.AuditKeep+10)
	appendAudit(t, db, "mallory", 3)
	for i := range store.AuditKeep + 10 {
		rec := store.AuditRecord{Time: time.Unix(int64(i), 0), Protocol: "imap", Username: "alice", Result: "bad-secret"}
		if err := db.AppendAudit(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	rawView(t, db, func(tx *bbolt.Tx) error {
		audit := tx.Bucket([]byte("audit"))
		for _, top := range []string{"audit", "auditfail"} {
			if n := tx.Bucket([]byte(top)).Bucket([]byte("alice")).Stats().KeyN; n != store.AuditKeep {
				t.Errorf("alice: %d records in %s, want %d", n, top, store.AuditKeep)
			}
		}
		if audit.Bucket([]byte("mallory")) != nil || audit.Get([]byte("mallory")) != nil {
			t.Error("the file has an audit bucket for mallory, who has no account")
		}
		return nil
	})
}

func TestAuditPersists(t *testing.T) {
	db := newDB(t)
	mustAccount(t, db, "alice")
	appendAudit(t, db, "alice", 3)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db = open(t, db.Path(), bolt.Options{})
	recs, err := db.RecentAudit(t.Context(), "alice", 10)
	if err != nil {
		t.Fatalf("RecentAudit: %v", err)
	}
	if len(recs) != 3 || recs[0].Time.Unix() != 2 || recs[2].Time.Unix() != 0 {
		t.Fatalf("RecentAudit after reopen = %+v, want the 3 records newest first", recs)
	}
	// Sequence numbers continue: the next record is the newest.
	appendAudit(t, db, "alice", 1)
	recs, err = db.RecentAudit(t.Context(), "alice", 1)
	if err != nil || len(recs) != 1 || recs[0].Time.Unix() != 0 {
		t.Fatalf("RecentAudit(1) after one more = %+v, %v; want the record of time 0", recs, err)
	}
}
