package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

var _ store.AuditLog = (*Store)(nil)

// auditKey is the list of username's recent audit records, newest first;
// it shares the account's hash tag.
func (s *Store) auditKey(username string) string { return s.userKey(username, "audit") }

// scriptAppendAudit pushes a record onto an account's audit list and trims
// it to the newest ARGV[2], if the account exists. KEYS: account, audit.
// ARGV: JSON record, keep.
var scriptAppendAudit = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
`)

// AppendAudit stores rec under rec.Username and drops the records older
// than the newest store.AuditKeep, in one script. If no account named
// rec.Username exists it stores nothing and returns nil. Revoking app
// passwords or changing the account leaves the records alone.
func (s *Store) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	return s.do(ctx, "append audit", func(ctx context.Context) error {
		v, err := json.Marshal(rec)
		if err != nil {
			return fail("encode audit record: %w", err)
		}
		keys := []string{s.userKey(rec.Username, "account"), s.auditKey(rec.Username)}
		return scriptAppendAudit.Run(ctx, s.rdb, keys, v, store.AuditKeep).Err()
	})
}

// RecentAudit returns up to n records of the account, newest first (none
// if n <= 0); store.ErrNotFound if the account does not exist.
func (s *Store) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	recs := []store.AuditRecord{}
	err := s.do(ctx, "recent audit", func(ctx context.Context) error {
		var exists *goredis.IntCmd
		var list *goredis.StringSliceCmd
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			exists = p.Exists(ctx, s.userKey(username, "account"))
			if n > 0 {
				list = p.LRange(ctx, s.auditKey(username), 0, int64(n)-1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if exists.Val() == 0 {
			return fail("account %q: %w", username, store.ErrNotFound)
		}
		if list == nil {
			return nil
		}
		for i, v := range list.Val() {
			var r store.AuditRecord
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				return fmt.Errorf("decode audit record %d of %q: %w", i, username, err)
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}
