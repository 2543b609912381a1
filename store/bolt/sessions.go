package bolt

import (
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"

	"github.com/passgate/passgate/store"
)

// CheckSessions reads the account and app password of every ref in one
// read transaction (see store.Store).
func (db *DB) CheckSessions(ctx context.Context, refs []store.SessionRef) ([]store.SessionState, error) {
	out := make([]store.SessionState, len(refs))
	err := db.view(ctx, "check sessions", func(tx *bbolt.Tx) error {
		accounts := make(map[string]*store.Account)
		for i, ref := range refs {
			acct, seen := accounts[ref.Username]
			if !seen {
				a, err := memoAccount(&db.accounts, tx, ref.Username)
				switch {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					return err
				default:
					acct = &a
				}
				accounts[ref.Username] = acct
			}
			out[i].Account = acct
			if acct == nil || ref.AppPasswordID == "" {
				continue
			}
			p, err := memoAppPassword(&db.apppasses, tx, ref.Username, ref.AppPasswordID)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				out[i].AppPassword = &p
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
