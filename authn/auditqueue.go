package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passgate/passgate/store"
)

// ErrAuditQueueFull is returned by AuditQueue.AppendAudit when the queue
// is full and the record was dropped.
var ErrAuditQueueFull = errors.New("audit queue full: record dropped")

// Defaults of AuditQueue.
const (
	defaultAuditQueueSize  = 4096
	defaultAuditBatch      = 512
	auditQueueWriteTimeout = 10 * time.Second
	// defaultAuditLinger is the least time between two writes: under load
	// a write (one bbolt fdatasync) carries what arrived in that time, not
	// just what arrived during the previous write. A lone record is
	// written at once; Flush and Close never wait for it.
	defaultAuditLinger = 10 * time.Millisecond
)

// auditBatcher is implemented by a store that appends many audit records
// in one transaction or round trip (store/bolt, store/redis).
type auditBatcher interface {
	AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error
}

// AuditQueue is a store.AuditLog that takes appends off the login path:
// AppendAudit queues the record and returns at once; one goroutine writes
// what has queued up, in order, many records per call of the store's
// AppendAuditBatch (one bbolt fsync, one Redis pipeline), at most one
// call per linger (10 ms) unless a batch fills or a Flush waits. A full queue
// drops the record, counts it (Dropped), warns (at most once a second) and
// returns ErrAuditQueueFull (which Auditor does not log again), so
// that a slow store never holds up a login. RecentAudit first waits for
// the records queued before it, so a reader sees its own writes. Close
// writes what is queued; appends after Close go to the store directly.
//
// Build it with NewAuditQueue.
type AuditQueue struct {
	st     store.AuditLog
	log    *slog.Logger
	max    int
	linger time.Duration
	ch     chan auditItem
	done   chan struct{}
	mu     sync.RWMutex // guards closed against sends on a closed ch
	closed bool

	dropped  atomic.Uint64
	lastWarn atomic.Int64 // unix nanoseconds of the last drop warning
}

// auditItem is a record to write or, if flushed is set, a marker closed
// once everything queued before it is written.
type auditItem struct {
	rec     store.AuditRecord
	flushed chan struct{}
}

var _ store.AuditLog = (*AuditQueue)(nil)

// NewAuditQueue starts the writer of a queue of size records (if zero, a
// default of 4096) in front of st. log receives write failures (if nil,
// slog.Default()).
func NewAuditQueue(st store.AuditLog, size int, log *slog.Logger) *AuditQueue {
	if size <= 0 {
		size = defaultAuditQueueSize
	}
	if log == nil {
		log = slog.Default()
	}
	q := &AuditQueue{st: st, log: log, max: defaultAuditBatch, linger: defaultAuditLinger,
		ch: make(chan auditItem, size), done: make(chan struct{})}
	go q.drain()
	return q
}

// AppendAudit queues rec; it does not wait for the store.
func (q *AuditQueue) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return q.st.AppendAudit(ctx, rec)
	}
	select {
	case q.ch <- auditItem{rec: rec}:
		q.mu.RUnlock()
		return nil
	default:
		q.mu.RUnlock()
		n := q.dropped.Add(1)
		q.warnDropped(n)
		return ErrAuditQueueFull
	}
}

// RecentAudit reads from the store after the records queued before the
// call are written.
func (q *AuditQueue) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	if err := q.Flush(ctx); err != nil {
		return nil, err
	}
	return q.st.RecentAudit(ctx, username, n)
}

// Flush waits until the records queued before the call are written (or
// failed and were logged).
func (q *AuditQueue) Flush(ctx context.Context) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil
	}
	m := auditItem{flushed: make(chan struct{})}
	select {
	case q.ch <- m:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return fmt.Errorf("audit flush: %w", ctx.Err())
	}
	select {
	case <-m.flushed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit flush: %w", ctx.Err())
	}
}

// warnDropped logs the drop count at most once a second (a store that
// does not keep up must not also flood the log).
func (q *AuditQueue) warnDropped(n uint64) {
	now := time.Now().UnixNano()
	last := q.lastWarn.Load()
	if now-last < int64(time.Second) || !q.lastWarn.CompareAndSwap(last, now) {
		return
	}
	q.log.Warn("audit queue full: records dropped (the store does not keep up)", "dropped_total", n)
}

// Dropped is the number of records dropped because the queue was full.
func (q *AuditQueue) Dropped() uint64 { return q.dropped.Load() }

// Close writes the queued records and stops the writer; it does not close
// the store. Later appends go to the store directly.
func (q *AuditQueue) Close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
	return nil
}

// drain is the writer: it takes what has queued up (at most max records)
// and writes it in one batch, until the queue is closed and empty. A
// batch that follows the previous write within linger waits for the rest
// of the linger to gather more (see gather).
func (q *AuditQueue) drain() {
	defer close(q.done)
	recs := make([]store.AuditRecord, 0, q.max)
	var marks []chan struct{}
	var last time.Time
	for it := range q.ch {
		recs, marks = q.add(recs[:0], marks[:0], it)
		recs, marks = q.gather(recs, marks, last.Add(q.linger))
		q.write(recs)
		if len(recs) > 0 {
			last = time.Now()
		}
		for _, m := range marks {
			close(m)
		}
	}
}

// gather adds to recs what is queued and, until the deadline, what
// arrives; it stops early when the batch is full, a Flush marker is
// taken (someone waits) or the queue is closed.
func (q *AuditQueue) gather(recs []store.AuditRecord, marks []chan struct{}, deadline time.Time) ([]store.AuditRecord, []chan struct{}) {
	var timeout <-chan time.Time
	for len(recs) < q.max && len(marks) == 0 {
		select {
		case it, ok := <-q.ch:
			if !ok {
				return recs, marks
			}
			recs, marks = q.add(recs, marks, it)
			continue
		default:
		}
		if timeout == nil {
			wait := time.Until(deadline)
			if wait <= 0 {
				return recs, marks
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case it, ok := <-q.ch:
			if !ok {
				return recs, marks
			}
			recs, marks = q.add(recs, marks, it)
		case <-timeout:
			return recs, marks
		}
	}
	// A marker or a full batch ends the wait, not the taking: what is
	// already queued goes in the same write.
	for len(recs) < q.max {
		select {
		case it, ok := <-q.ch:
			if !ok {
				return recs, marks
			}
			recs, marks = q.add(recs, marks, it)
		default:
			return recs, marks
		}
	}
	return recs, marks
}

func (q *AuditQueue) add(recs []store.AuditRecord, marks []chan struct{}, it auditItem) ([]store.AuditRecord, []chan struct{}) {
	if it.flushed != nil {
		return recs, append(marks, it.flushed)
	}
	return append(recs, it.rec), marks
}

// write stores recs in one batch if the store can, else one by one.
func (q *AuditQueue) write(recs []store.AuditRecord) {
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditQueueWriteTimeout)
	defer cancel()
	if b, ok := q.st.(auditBatcher); ok {
		if err := b.AppendAuditBatch(ctx, recs); err != nil {
			q.log.Warn("audit store append failed", "records", len(recs), "err", err)
		}
		return
	}
	for _, rec := range recs {
		if err := q.st.AppendAudit(ctx, rec); err != nil {
			q.log.Warn("audit store append failed",
				"user", rec.Username, "result", rec.Result, "err", err)
		}
	}
}
