package smtp

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

// OwnAddress is the address an account sends as without an alias: its
// name if the name is an address, else name@defaultDomain
// (smtp.default_domain) if that is set, else "".
func OwnAddress(username, defaultDomain string) string {
	switch {
	case strings.Contains(username, "@"):
		return username
	case defaultDomain != "":
		return username + "@" + defaultDomain
	}
	return ""
}

// Primary finds where an account's own mail goes, by the rules the sender
// check uses: its OwnAddress, else its first alias; "" if it has none.
func (s Senders) Primary(defaultDomain string) func(ctx context.Context, username string) (string, error) {
	return func(ctx context.Context, username string) (string, error) {
		if a := OwnAddress(username, defaultDomain); a != "" {
			return a, nil
		}
		if s == nil {
			return "", nil
		}
		aliases, err := s(ctx, username)
		if err != nil {
			return "", err
		}
		for _, a := range aliases {
			if strings.Contains(a, "@") {
				return a, nil
			}
		}
		return "", nil
	}
}

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
