package portal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/store"
)

// MailboxLinks keeps each user's refresh token for the delegated upstream
// login in the account (store.Account.OAuth), sealed with the portal's key
// like the TOTP secrets: the upstream login's oauth.Delegated reads and
// rotates it through this oauth.RefreshStore, the portal's link flow
// stores the first one. Every instance on the same store shares it.
type MailboxLinks struct {
	// Store holds the accounts. Required.
	Store store.Store
	// Key is the portal's 32-byte key (Server.Key). Required.
	Key []byte
	// Now is the clock of OAuthLink.Refused; if nil, time.Now.
	Now func() time.Time
	// Logger gets a line when the provider refused a token for good; if
	// nil, slog.Default().
	Logger *slog.Logger
}

var _ oauth.RefreshStore = (*MailboxLinks)(nil)

// sealPurpose is the additional data's purpose of a sealed refresh token.
const sealPurpose = "oauth-refresh"

// RefreshToken returns user's refresh token; an error wrapping
// oauth.ErrNotLinked if the user never linked the mailbox, or the provider
// refused the last token (the user must link again).
func (m *MailboxLinks) RefreshToken(ctx context.Context, user string) (string, error) {
	a, err := m.Store.GetAccount(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("refresh token of %s: no account: %w", user, oauth.ErrNotLinked)
	}
	if err != nil {
		return "", fmt.Errorf("refresh token of %s: %w", user, err)
	}
	if !a.OAuth.Usable() {
		return "", fmt.Errorf("refresh token of %s: %w", user, oauth.ErrNotLinked)
	}
	rt, err := sealKey(m.Key).open(sealPurpose, a.Username, a.OAuth.RefreshEnc)
	if err != nil { // the portal key changed: the link is lost, like enrolments
		return "", fmt.Errorf("refresh token of %s: %w: %w", user, oauth.ErrNotLinked, err)
	}
	return string(rt), nil
}

// errStale aborts a swap whose old token is no longer the stored one.
var errStale = errors.New("the stored refresh token changed")

// SwapRefreshToken replaces user's refresh token old by new in one store
// transaction if old is still the one stored (the user did not link again
// meanwhile); an empty new marks the link refused, so that the portal asks
// the user to link again.
func (m *MailboxLinks) SwapRefreshToken(ctx context.Context, user, old, new string) error {
	var sealed []byte
	if new != "" {
		var err error
		if sealed, err = sealKey(m.Key).seal(sealPurpose, user, []byte(new)); err != nil {
			return fmt.Errorf("swap refresh token of %s: %w", user, err)
		}
	}
	now := m.now()
	err := m.Store.UpdateAccount(ctx, user, func(a *store.Account) error {
		if !a.OAuth.Usable() {
			return errStale
		}
		cur, err := sealKey(m.Key).open(sealPurpose, a.Username, a.OAuth.RefreshEnc)
		if err != nil || subtle.ConstantTimeCompare(cur, []byte(old)) != 1 {
			return errStale
		}
		link := *a.OAuth
		link.RefreshEnc = sealed
		if new == "" {
			link.Refused = now
		}
		a.OAuth = &link
		return nil
	})
	switch {
	case errors.Is(err, errStale), errors.Is(err, store.ErrNotFound):
		return nil // linked again, unlinked or deleted meanwhile: nothing to replace
	case err != nil:
		return fmt.Errorf("swap refresh token of %s: %w", user, err)
	}
	if new == "" {
		m.logger().WarnContext(ctx, "oauth: the provider refused the mailbox link for good; the user must link again", "user", user)
	}
	return nil
}

func (m *MailboxLinks) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *MailboxLinks) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}
