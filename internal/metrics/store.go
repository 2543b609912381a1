package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/passgate/passgate/store"
)

// Backend is the store a running passgate uses: accounts and app
// passwords, the per-account audit view, and short-lived values.
type Backend interface {
	store.Store
	store.AuditLog
	store.KV
}

var (
	_ Backend        = (*timedStore)(nil)
	_ store.Counters = (*timedCounters)(nil)
)

// Store returns b with every call timed in
// passgate_store_call_duration_seconds and every failure counted in
// passgate_store_errors_total, by operation. ErrNotFound and ErrExists
// are answers, not failures. A nil m returns b unchanged.
func (m *Metrics) Store(b Backend) Backend {
	if m == nil {
		return b
	}
	return &timedStore{b: b, m: m}
}

// Counters is Store for the brute-force counters (in Redis, a store call
// of every login).
func (m *Metrics) Counters(c store.Counters) store.Counters {
	if m == nil || c == nil {
		return c
	}
	return &timedCounters{c: c, m: m}
}

// storeCall observes one call of operation op that started at start.
func (m *Metrics) storeCall(op string, start time.Time, err error) {
	m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// timedStore is a Backend that reports each call to its Metrics.
type timedStore struct {
	b Backend
	m *Metrics
}

func (s *timedStore) CreateAccount(ctx context.Context, a store.Account) (err error) {
	defer func(t time.Time) { s.m.storeCall("create_account", t, err) }(time.Now())
	return s.b.CreateAccount(ctx, a)
}

func (s *timedStore) GetAccount(ctx context.Context, username string) (a store.Account, err error) {
	defer func(t time.Time) { s.m.storeCall("get_account", t, err) }(time.Now())
	return s.b.GetAccount(ctx, username)
}

func (s *timedStore) UpdateAccount(ctx context.Context, username string, fn func(*store.Account) error) (err error) {
	defer func(t time.Time) { s.m.storeCall("update_account", t, err) }(time.Now())
	return s.b.UpdateAccount(ctx, username, fn)
}

func (s *timedStore) ListAccounts(ctx context.Context) (l []store.Account, err error) {
	defer func(t time.Time) { s.m.storeCall("list_accounts", t, err) }(time.Now())
	return s.b.ListAccounts(ctx)
}

func (s *timedStore) CreateAppPassword(ctx context.Context, p store.AppPassword) (err error) {
	defer func(t time.Time) { s.m.storeCall("create_app_password", t, err) }(time.Now())
	return s.b.CreateAppPassword(ctx, p)
}

func (s *timedStore) ListAppPasswords(ctx context.Context, username string) (l []store.AppPassword, err error) {
	defer func(t time.Time) { s.m.storeCall("list_app_passwords", t, err) }(time.Now())
	return s.b.ListAppPasswords(ctx, username)
}

func (s *timedStore) FindAppPassword(ctx context.Context, username string, tag []byte) (p store.AppPassword, err error) {
	defer func(t time.Time) { s.m.storeCall("find_app_password", t, err) }(time.Now())
	return s.b.FindAppPassword(ctx, username, tag)
}

func (s *timedStore) RevokeAppPassword(ctx context.Context, username, id string) (err error) {
	defer func(t time.Time) { s.m.storeCall("revoke_app_password", t, err) }(time.Now())
	return s.b.RevokeAppPassword(ctx, username, id)
}

func (s *timedStore) RevokeAllAppPasswords(ctx context.Context, usernames []string) (n int, err error) {
	defer func(t time.Time) { s.m.storeCall("revoke_all_app_passwords", t, err) }(time.Now())
	return s.b.RevokeAllAppPasswords(ctx, usernames)
}

func (s *timedStore) TouchAppPassword(ctx context.Context, username, id string, use store.LastUse) (err error) {
	defer func(t time.Time) { s.m.storeCall("touch_app_password", t, err) }(time.Now())
	return s.b.TouchAppPassword(ctx, username, id, use)
}

func (s *timedStore) UpdateAppPassword(ctx context.Context, username, id string, fn func(*store.AppPassword) error) (p store.AppPassword, err error) {
	defer func(t time.Time) { s.m.storeCall("update_app_password", t, err) }(time.Now())
	return s.b.UpdateAppPassword(ctx, username, id, fn)
}

func (s *timedStore) LookupKey(ctx context.Context) (k []byte, err error) {
	defer func(t time.Time) { s.m.storeCall("lookup_key", t, err) }(time.Now())
	return s.b.LookupKey(ctx)
}

// Subscribe times the subscription's start only; the events that follow
// are not store calls of their own.
func (s *timedStore) Subscribe(ctx context.Context) (ch <-chan store.Event, err error) {
	defer func(t time.Time) { s.m.storeCall("subscribe", t, err) }(time.Now())
	return s.b.Subscribe(ctx)
}

func (s *timedStore) CheckSessions(ctx context.Context, refs []store.SessionRef) (st []store.SessionState, err error) {
	defer func(t time.Time) { s.m.storeCall("check_sessions", t, err) }(time.Now())
	return s.b.CheckSessions(ctx, refs)
}

func (s *timedStore) AppendAudit(ctx context.Context, rec store.AuditRecord) (err error) {
	defer func(t time.Time) { s.m.storeCall("append_audit", t, err) }(time.Now())
	return s.b.AppendAudit(ctx, rec)
}

// AppendAuditBatch keeps the backend's batched append (authn.AuditQueue
// looks for it), or appends one by one.
func (s *timedStore) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) (err error) {
	defer func(t time.Time) { s.m.storeCall("append_audit_batch", t, err) }(time.Now())
	if b, ok := s.b.(interface {
		AppendAuditBatch(context.Context, []store.AuditRecord) error
	}); ok {
		return b.AppendAuditBatch(ctx, recs)
	}
	for _, rec := range recs {
		if err := s.b.AppendAudit(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *timedStore) RecentAudit(ctx context.Context, username string, n int) (l []store.AuditRecord, err error) {
	defer func(t time.Time) { s.m.storeCall("recent_audit", t, err) }(time.Now())
	return s.b.RecentAudit(ctx, username, n)
}

func (s *timedStore) PutKV(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer func(t time.Time) { s.m.storeCall("put_kv", t, err) }(time.Now())
	return s.b.PutKV(ctx, key, value, ttl)
}

func (s *timedStore) AddKV(ctx context.Context, key string, value []byte, ttl time.Duration) (ok bool, err error) {
	defer func(t time.Time) { s.m.storeCall("add_kv", t, err) }(time.Now())
	return s.b.AddKV(ctx, key, value, ttl)
}

func (s *timedStore) GetKV(ctx context.Context, key string) (v []byte, err error) {
	defer func(t time.Time) { s.m.storeCall("get_kv", t, err) }(time.Now())
	return s.b.GetKV(ctx, key)
}

func (s *timedStore) DeleteKV(ctx context.Context, key string) (err error) {
	defer func(t time.Time) { s.m.storeCall("delete_kv", t, err) }(time.Now())
	return s.b.DeleteKV(ctx, key)
}

// Close is not timed: it happens once, at the end.
func (s *timedStore) Close() error { return s.b.Close() }

// timedCounters is a store.Counters that reports each call to its Metrics.
type timedCounters struct {
	c store.Counters
	m *Metrics
}

func (c *timedCounters) Incr(ctx context.Context, key string, n int64, ttl time.Duration) (v int64, err error) {
	defer func(t time.Time) { c.m.storeCall("counter_incr", t, err) }(time.Now())
	return c.c.Incr(ctx, key, n, ttl)
}

func (c *timedCounters) Get(ctx context.Context, key string) (v int64, err error) {
	defer func(t time.Time) { c.m.storeCall("counter_get", t, err) }(time.Now())
	return c.c.Get(ctx, key)
}

func (c *timedCounters) GetMany(ctx context.Context, keys []string) (v []int64, err error) {
	defer func(t time.Time) { c.m.storeCall("counter_get_many", t, err) }(time.Now())
	return c.c.GetMany(ctx, keys)
}

func (c *timedCounters) Delete(ctx context.Context, key string) (err error) {
	defer func(t time.Time) { c.m.storeCall("counter_delete", t, err) }(time.Now())
	return c.c.Delete(ctx, key)
}

func (c *timedCounters) IncrMany(ctx context.Context, incrs []store.Incr) (v []int64, err error) {
	defer func(t time.Time) { c.m.storeCall("counter_incr_many", t, err) }(time.Now())
	return c.c.IncrMany(ctx, incrs)
}
