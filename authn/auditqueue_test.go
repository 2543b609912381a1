package authn

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// openAuditBolt is a bolt store in t's temp dir with the accounts users.
func openAuditBolt(tb testing.TB, users ...string) *bolt.DB {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "audit.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, u := range users {
		if err := db.CreateAccount(context.Background(), store.Account{Username: u, PasswordHash: "x", Created: t0}); err != nil {
			tb.Fatalf("CreateAccount(%q): %v", u, err)
		}
	}
	return db
}

func queuedRec(user string, i int) store.AuditRecord {
	return store.AuditRecord{Time: t0, Protocol: "imap", Username: user, Result: "ok", SessionID: fmt.Sprintf("s%03d", i)}
}

func sessionIDs(recs []store.AuditRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.SessionID)
	}
	return out
}

// Records appended by several goroutines through the queue all reach the
// store, each goroutine's in its order, and a reader through the queue
// sees them at once (RecentAudit flushes).
func TestAuditQueueOrderAndReadYourWrites(t *testing.T) {
	db := openAuditBolt(t, "alice", "bob")
	q := NewAuditQueue(db, 0, nil)
	t.Cleanup(func() { q.Close() })
	var wg sync.WaitGroup
	for _, u := range []string{"alice", "bob"} {
		wg.Go(func() {
			for i := range 50 {
				if err := q.AppendAudit(t.Context(), queuedRec(u, i)); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for _, u := range []string{"alice", "bob"} {
		got, err := q.RecentAudit(t.Context(), u, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids := sessionIDs(got)
		if len(ids) != 50 {
			t.Fatalf("%s: %d records, want 50: %q", u, len(ids), ids)
		}
		for i, id := range ids {
			if want := fmt.Sprintf("s%03d", 49-i); id != want {
				t.Fatalf("%s: record %d is %s, want %s (order %q)", u, i, id, want, ids)
			}
		}
	}
}

// Close writes what is queued: after it, a reopened view of the store
// holds every record, and appends after Close still reach the store.
func TestAuditQueueFlushOnClose(t *testing.T) {
	db := openAuditBolt(t, "alice")
	q := NewAuditQueue(db, 0, nil)
	for i := range 300 {
		if err := q.AppendAudit(t.Context(), queuedRec("alice", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.AppendAudit(t.Context(), queuedRec("alice", 300)); err != nil {
		t.Fatalf("AppendAudit after Close: %v", err)
	}
	got, err := db.RecentAudit(t.Context(), "alice", store.AuditMax)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.AuditKeep || got[0].SessionID != "s300" || got[len(got)-1].SessionID != "s201" {
		t.Fatalf("after Close: %d records %q, want s300 down to s201", len(got), sessionIDs(got))
	}
}

// blockedAudit is a store whose appends wait until release is closed.
type blockedAudit struct {
	memAudit
	release chan struct{}
}

func (b *blockedAudit) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	<-b.release
	return b.memAudit.AppendAudit(ctx, rec)
}

// A store that does not keep up never holds up the caller: once the queue
// is full, records are dropped, counted and reported as such; the ones
// queued are still written.
func TestAuditQueueFullDrops(t *testing.T) {
	st := &blockedAudit{release: make(chan struct{})}
	q := NewAuditQueue(st, 4, nil)
	var dropped int
	for i := range 20 {
		if err := q.AppendAudit(t.Context(), queuedRec("alice", i)); errors.Is(err, ErrAuditQueueFull) {
			dropped++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// The loop ended while the store was blocked: it did not wait.
	if dropped == 0 || uint64(dropped) != q.Dropped() {
		t.Fatalf("dropped %d (Dropped() = %d), want some and equal", dropped, q.Dropped())
	}
	close(st.release)
	q.Close()
	if got := len(st.recs); got != 20-dropped {
		t.Fatalf("store holds %d records, want the %d not dropped", got, 20-dropped)
	}
}

// BenchmarkAuditRecordBolt is the cost per login of getting its audit
// record into a bolt store, 8 logins at a time: "sync" appends in the
// login (one bbolt transaction and fdatasync each), "queue" through an
// AuditQueue (many records per transaction), sized to hold every record
// so that none is dropped, and closed (written out) inside the timing.
func BenchmarkAuditRecordBolt(b *testing.B) {
	for _, mode := range []string{"sync", "queue"} {
		b.Run(mode, func(b *testing.B) {
			db := openAuditBolt(b, "alice")
			var st store.AuditLog = db
			var q *AuditQueue
			if mode == "queue" {
				q = NewAuditQueue(db, b.N, nil)
				st = q
			}
			au := &Auditor{Store: st}
			b.SetParallelism(4) // 4 x GOMAXPROCS goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					au.Record(context.Background(), queuedRec("alice", 1))
				}
			})
			if q != nil {
				q.Close()
				if q.Dropped() != 0 {
					b.Fatalf("%d records dropped", q.Dropped())
				}
			}
		})
	}
}

// batchCount is an audit store that counts the batches written to it.
type batchCount struct {
	store.AuditLog
	mu    sync.Mutex
	sizes []int
}

func (b *batchCount) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(recs))
	b.mu.Unlock()
	return b.AuditLog.(auditBatcher).AppendAuditBatch(ctx, recs)
}

func (b *batchCount) batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// Under load (records arriving within the linger of the last write) the
// queue gathers them into one write, one fdatasync, instead of writing
// each as it comes; a Flush does not wait for the linger, and no record
// is lost.
func TestAuditQueueGathersWithinLinger(t *testing.T) {
	db := openAuditBolt(t, "alice")
	st := &batchCount{AuditLog: db}
	q := NewAuditQueue(st, 0, nil)
	q.linger = time.Hour
	t.Cleanup(func() { q.Close() })
	if err := q.AppendAudit(t.Context(), queuedRec("alice", 0)); err != nil {
		t.Fatal(err)
	}
	if err := q.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if err := q.AppendAudit(t.Context(), queuedRec("alice", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // spaced out, as logins come
	}
	got, err := q.RecentAudit(t.Context(), "alice", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 21 {
		t.Errorf("RecentAudit: %d records, want 21", len(got))
	}
	if b := st.batches(); len(b) != 2 || b[0] != 1 || b[1] != 20 {
		t.Errorf("batches written: %v, want [1 20] (a lone record at once, then the rest in one write at the Flush)", b)
	}
}
