package account

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"

	"github.com/passgate/passgate/store"
)

// DefaultMaxAppPasswords is the cap on one account's app passwords when
// Service.MaxAppPasswords is zero: 40, as Microsoft's.
const DefaultMaxAppPasswords = 40

// ErrTooManyAppPasswords is wrapped by the FieldError of a creation refused
// because the account already has Service.MaxAppPasswords app passwords.
var ErrTooManyAppPasswords = errors.New("too many app passwords")

// maxAppPasswords is the cap, or 0 for none.
func (s *Service) maxAppPasswords() int { return AppPasswordCap(s.MaxAppPasswords) }

// AppPasswordCap is the cap on one account's app passwords that
// Service.MaxAppPasswords = configured sets, 0 for none.
func AppPasswordCap(configured int) int {
	switch {
	case configured == 0:
		return DefaultMaxAppPasswords
	case configured < 0:
		return 0
	}
	return configured
}

// capErr is the refusal of one app password beyond the cap.
func capErr(user string, max int) error {
	return fieldErr("username", ErrTooManyAppPasswords,
		"%s already has %d app passwords, the most allowed (authn.max_app_passwords): revoke one first", user, max)
}

// overCap reports whether n app passwords already fill the cap.
func (s *Service) overCap(n int) bool {
	max := s.maxAppPasswords()
	return max > 0 && n >= max
}

// recheckCap runs after p was stored: if the account now has more app
// passwords than the cap (another creation, in another process, raced this
// one), p is deleted again and the creation refused. The last of several
// racing creations to be stored sees them all, so whatever the
// interleaving the account ends within the cap; racing creations may both
// be refused, never both kept over it. p's secret has not been returned
// yet, so nothing can have used it.
func (s *Service) recheckCap(ctx context.Context, p store.AppPassword) error {
	max := s.maxAppPasswords()
	if max <= 0 {
		return nil
	}
	pws, err := s.Store.ListAppPasswords(ctx, p.Username)
	if err == nil && len(pws) <= max {
		return nil
	}
	if rerr := s.Store.RevokeAppPassword(ctx, p.Username, p.ID); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
		return errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	s.logger().WarnContext(ctx, "app password refused: cap reached by a concurrent creation",
		"user", p.Username, "max", max)
	return capErr(p.Username, max)
}

// userLocks serialise the app-password creations of one account within
// one Service, so that its count and create cannot interleave; recheckCap
// covers other processes.
type userLocks struct {
	seed  maphash.Seed
	once  sync.Once
	locks [64]sync.Mutex
}

// lock locks username's stripe and returns its unlock.
func (l *userLocks) lock(username string) func() {
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	m := &l.locks[maphash.String(l.seed, username)%uint64(len(l.locks))]
	m.Lock()
	return m.Unlock
}
