package smtp

import (
	"context"
	"errors"
	"fmt"

	"github.com/passgate/passgate/store"
)

// Senders returns the addresses an account may use in MAIL FROM besides its
// username (aliases).
type Senders func(ctx context.Context, username string) ([]string, error)

// Accounts reads accounts (store.Store implements it).
type Accounts interface {
	GetAccount(ctx context.Context, username string) (store.Account, error)
}

var _ Accounts = (store.Store)(nil)

// AliasesOf is the Senders of accounts kept in st: an account's aliases
// (`passgate user alias add`). An unknown account has none.
func AliasesOf(st Accounts) Senders {
	return func(ctx context.Context, username string) ([]string, error) {
		a, err := st.GetAccount(ctx, username)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("aliases of %s: %w", username, err)
		}
		return a.Aliases, nil
	}
}
