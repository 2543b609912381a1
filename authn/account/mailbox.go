package account

import (
	"context"
	"errors"
	"slices"

	"github.com/passgate/passgate/store"
)

// Audit results of mailbox links (OAuth 2.0 delegated access).
const (
	ResultMailboxLinked   = "mailbox-linked"
	ResultMailboxUnlinked = "mailbox-unlinked"
)

// ErrNotLinked is wrapped by UnlinkMailbox's error for an account that
// has no linked mailbox.
var ErrNotLinked = errors.New("no linked mailbox")

// LinkMailbox stores the user's refresh token, already sealed by the
// portal (refreshEnc), as the account's mailbox link, replacing any
// earlier one.
func (s *Service) LinkMailbox(ctx context.Context, who Actor, username string, refreshEnc []byte) error {
	if len(refreshEnc) == 0 {
		return errors.New("link mailbox: no refresh token")
	}
	link := &store.OAuthLink{RefreshEnc: slices.Clone(refreshEnc), Linked: s.now()}
	return s.update(ctx, who, username, ResultMailboxLinked, func(a *store.Account) error {
		a.OAuth = link
		return nil
	})
}

// UnlinkMailbox removes the account's mailbox link: passgate can no longer
// log in to the mailbox for the user until the user links it again. An
// error wrapping ErrNotLinked if the account has no link (nothing is
// changed or audited then).
func (s *Service) UnlinkMailbox(ctx context.Context, who Actor, username string) error {
	return s.update(ctx, who, username, ResultMailboxUnlinked, func(a *store.Account) error {
		if a.OAuth == nil {
			return fieldErr("username", ErrNotLinked, "%s has no linked mailbox", a.Username)
		}
		a.OAuth = nil
		return nil
	})
}
