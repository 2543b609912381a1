package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/store"
)

var _ store.AuditLog = (*Store)(nil)

// auditKey is the list of username's recent sign-ins and changes, newest
// first; auditFailKey the list of its failed attempts
// (store.AuditRecord.Failure), capped apart; auditSeqKey the account's
// append counter, which numbers the records of both. All share the
// account's hash tag.
func (s *Store) auditKey(username string) string     { return s.userKey(username, "audit") }
func (s *Store) auditFailKey(username string) string { return s.userKey(username, "auditfail") }
func (s *Store) auditSeqKey(username string) string  { return s.userKey(username, "auditseq") }

// scriptAppendAudit pushes "SEQ JSON" onto one of an account's audit lists
// and trims it to the newest ARGV[2], if the account exists. KEYS:
// account, audit, auditfail, auditseq. ARGV: JSON record, keep, failure (1
// or 0). Lists written before the split hold bare JSON (sequence 0: older
// than every numbered record).
var scriptAppendAudit = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('INCR', KEYS[4])
local list = KEYS[2]
if ARGV[3] == '1' then list = KEYS[3] end
redis.call('LPUSH', list, seq .. ' ' .. ARGV[1])
redis.call('LTRIM', list, 0, tonumber(ARGV[2]) - 1)
return 1
`)

// AppendAudit stores rec under rec.Username and drops the records of its
// kind older than the newest store.AuditKeep, in one script. If no account
// named rec.Username exists it stores nothing and returns nil. Revoking app
// passwords or changing the account leaves the records alone.
func (s *Store) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	return s.do(ctx, "append audit", func(ctx context.Context) error {
		v, err := json.Marshal(rec)
		if err != nil {
			return fail("encode audit record: %w", err)
		}
		return scriptAppendAudit.Run(ctx, s.rdb, s.auditKeys(rec.Username), v, store.AuditKeep, rec.Failure()).Err()
	})
}

// AppendAuditBatch stores recs in order as AppendAudit would one by one,
// in one pipeline (one round trip per node). A pipeline cannot fall back
// from EVALSHA, so the script is loaded first.
func (s *Store) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	return s.do(ctx, "append audit", func(ctx context.Context) error {
		vals := make([][]byte, len(recs))
		for i, rec := range recs {
			v, err := json.Marshal(rec)
			if err != nil {
				return fail("encode audit record: %w", err)
			}
			vals[i] = v
		}
		if err := scriptAppendAudit.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, rec := range recs {
				scriptAppendAudit.EvalSha(ctx, p, s.auditKeys(rec.Username), vals[i], store.AuditKeep, rec.Failure())
			}
			return nil
		})
		return err
	})
}

// auditKeys are the keys scriptAppendAudit takes for username.
func (s *Store) auditKeys(u string) []string {
	return []string{s.userKey(u, "account"), s.auditKey(u), s.auditFailKey(u), s.auditSeqKey(u)}
}

// RecentAudit returns up to n records of the account (at most
// store.AuditMax), both kinds merged in append order, newest first (none
// if n <= 0); store.ErrNotFound if the account does not exist.
func (s *Store) RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error) {
	var recs []store.AuditRecord
	err := s.do(ctx, "recent audit", func(ctx context.Context) error {
		var exists *goredis.IntCmd
		var lists [2]*goredis.StringSliceCmd
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			exists = p.Exists(ctx, s.userKey(username, "account"))
			if n > 0 {
				lists[0] = p.LRange(ctx, s.auditKey(username), 0, int64(n)-1)
				lists[1] = p.LRange(ctx, s.auditFailKey(username), 0, int64(n)-1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if exists.Val() == 0 {
			return fail("account %q: %w", username, store.ErrNotFound)
		}
		if n <= 0 {
			return nil
		}
		var decoded [2][]store.SeqRecord
		for i, l := range lists {
			if decoded[i], err = decodeAudit(l.Val(), username); err != nil {
				return err
			}
		}
		recs = store.MergeAudit(decoded[0], decoded[1], n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []store.AuditRecord{}
	}
	return recs, nil
}

// decodeAudit decodes the elements of an audit list: "SEQ JSON", or bare
// JSON (sequence 0) from before the split.
func decodeAudit(elems []string, username string) ([]store.SeqRecord, error) {
	out := make([]store.SeqRecord, 0, len(elems))
	for i, e := range elems {
		var sr store.SeqRecord
		if num, rest, ok := strings.Cut(e, " "); ok && !strings.HasPrefix(e, "{") {
			seq, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("decode audit record %d of %q: bad sequence: %w", i, username, err)
			}
			sr.Seq, e = seq, rest
		}
		if err := json.Unmarshal([]byte(e), &sr.Rec); err != nil {
			return nil, fmt.Errorf("decode audit record %d of %q: %w", i, username, err)
		}
		out = append(out, sr)
	}
	return out, nil
}
