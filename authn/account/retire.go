package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passgate/passgate/store"
)

// DefaultUnusedWarnBefore is how long before its removal an unused app
// password is announced when Retirement.WarnBefore is zero.
const DefaultUnusedWarnBefore = 14 * 24 * time.Hour

// DefaultStaleAge is the idle time after which an app password is marked
// stale for administrators (passgate apppass stale, the admin user page)
// when no retirement policy gives one.
const DefaultStaleAge = 60 * 24 * time.Hour

// Audit results of the retirement of unused app passwords.
const (
	// ResultAppPasswordRetireWarning: the password will be removed on
	// the record's RemovalOn unless it is used before.
	ResultAppPasswordRetireWarning = "app-password-retire-warning"
	// ResultAppPasswordRetired: the password was removed, unused.
	ResultAppPasswordRetired = "app-password-retired"
)

// SystemRetire is the actor of the retirement job of passgate serve.
var SystemRetire = Actor{Door: DoorSystem, Name: "retire"}

// Retirement is the policy for unused app passwords (authn.unused_after):
// one not used for After, counted from its last use or, if never used,
// its creation, is revoked; WarnBefore earlier, its owner is told.
type Retirement struct {
	// After is the idle time that retires a password; zero: never.
	After time.Duration
	// WarnBefore: zero is DefaultUnusedWarnBefore.
	WarnBefore time.Duration
}

// On reports whether unused passwords are retired at all.
func (r Retirement) On() bool { return r.After > 0 }

func (r Retirement) warnBefore() time.Duration {
	if r.WarnBefore > 0 {
		return r.WarnBefore
	}
	return DefaultUnusedWarnBefore
}

// IdleSince is when p was last used, or created if it never was.
func IdleSince(p store.AppPassword) time.Time {
	if !p.LastUsed.Time.IsZero() {
		return p.LastUsed.Time
	}
	return p.Created
}

// At is when p will be removed if it stays unused; zero when r is off.
func (r Retirement) At(p store.AppPassword) time.Time {
	if !r.On() {
		return time.Time{}
	}
	return IdleSince(p).Add(r.After)
}

// Warned reports whether, at now, p is in its warning period (or past it).
func (r Retirement) Warned(p store.AppPassword, now time.Time) bool {
	return r.On() && !now.Before(r.At(p).Add(-r.warnBefore()))
}

// Stale reports whether p is worth an administrator's look at now: in its
// warning period if r is on, else idle for DefaultStaleAge.
func (r Retirement) Stale(p store.AppPassword, now time.Time) bool {
	if r.On() {
		return r.Warned(p, now)
	}
	return !now.Before(IdleSince(p).Add(DefaultStaleAge))
}

// StaleAppPassword is an app password idle for a while, with its owner.
type StaleAppPassword struct {
	Username string `json:"username"`
	AppPasswordInfo
	IdleSince time.Time `json:"idle_since"`
	// RetireAt is when the retirement job removes it; zero if it never does.
	RetireAt time.Time `json:"retire_at,omitzero"`
}

// RetireReport is what one run of RetireUnused did (or, dry, would do).
type RetireReport struct {
	DryRun  bool               `json:"dry_run,omitempty"`
	Retired []StaleAppPassword `json:"retired"`
	Warned  []StaleAppPassword `json:"warned"`
}

// Stale lists, for every account, the app passwords not used for
// olderThan (counted from creation if never used): accounts in username
// order, each account's passwords oldest first.
func (s *Service) Stale(ctx context.Context, olderThan time.Duration) ([]StaleAppPassword, error) {
	if olderThan <= 0 {
		return nil, fieldErr("older-than", nil, "%s is not a positive age", olderThan)
	}
	var out []StaleAppPassword
	cutoff := s.now().Add(-olderThan)
	err := s.eachAppPassword(ctx, func(p store.AppPassword) error {
		if !IdleSince(p).After(cutoff) {
			out = append(out, s.stale(p))
		}
		return nil
	})
	return out, err
}

func (s *Service) stale(p store.AppPassword) StaleAppPassword {
	return StaleAppPassword{Username: p.Username, AppPasswordInfo: appPasswordInfo(p),
		IdleSince: IdleSince(p), RetireAt: s.Retire.At(p)}
}

// eachAppPassword calls fn with every app password of every account.
func (s *Service) eachAppPassword(ctx context.Context, fn func(store.AppPassword) error) error {
	accts, err := s.Store.ListAccounts(ctx)
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	for _, a := range accts {
		pws, err := s.Store.ListAppPasswords(ctx, a.Username)
		if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			continue
		}
		if err != nil {
			return fmt.Errorf("list app passwords of %s: %w", a.Username, err)
		}
		for _, p := range pws {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// RetireUnused applies the Retire policy once: it revokes every app
// password unused for Retire.After (the store's revocation event ends its
// sessions) and records a warning in the audit trail of its owner for
// each that enters its warning period, once per idle period. With dryRun
// it changes nothing and reports what it would do. It is an error when
// the policy is off.
func (s *Service) RetireUnused(ctx context.Context, who Actor, dryRun bool) (RetireReport, error) {
	if err := who.check(); err != nil {
		return RetireReport{}, err
	}
	if !s.Retire.On() {
		return RetireReport{}, errors.New("authn.unused_after is not set: no app password is ever retired")
	}
	rep := RetireReport{DryRun: dryRun, Retired: []StaleAppPassword{}, Warned: []StaleAppPassword{}}
	now := s.now()
	err := s.eachAppPassword(ctx, func(p store.AppPassword) error {
		switch {
		case !now.Before(s.Retire.At(p)):
			if !dryRun {
				if err := s.Store.RevokeAppPassword(ctx, p.Username, p.ID); errors.Is(err, store.ErrNotFound) {
					return nil // revoked meanwhile
				} else if err != nil {
					return fmt.Errorf("retire app password %s of %s: %w", p.ID, p.Username, err)
				}
				s.audit(ctx, who, p.Username, ResultAppPasswordRetired, &p)
			}
			rep.Retired = append(rep.Retired, s.stale(p))
		case s.Retire.Warned(p, now):
			first, err := s.firstWarning(ctx, p, dryRun)
			if err != nil {
				return err
			}
			if first {
				rep.Warned = append(rep.Warned, s.stale(p))
			}
		}
		return nil
	})
	return rep, err
}

// firstWarning reports whether p has not been announced in its current
// idle period, and (unless dryRun) announces it: an audit record the owner
// sees in their activity, whose RemovalOn is the removal date. Announcements
// are kept as short-lived values if the store keeps them (store.KV),
// atomically across instances; without, every run warns again.
func (s *Service) firstWarning(ctx context.Context, p store.AppPassword, dryRun bool) (bool, error) {
	at := s.Retire.At(p)
	key := fmt.Sprintf("retire-warned/%s/%s/%d", p.Username, p.ID, IdleSince(p).Unix())
	kv, ok := s.Store.(store.KV)
	if ok {
		ttl := max(at.Sub(s.now()), 0) + 7*24*time.Hour
		var err error
		if dryRun {
			_, err = kv.GetKV(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			return false, err
		}
		if added, err := kv.AddKV(ctx, key, []byte{1}, ttl); err != nil || !added {
			return false, err
		}
	}
	if dryRun {
		return true, nil
	}
	s.auditWarning(ctx, p, at)
	return true, nil
}

// auditWarning records the coming removal of p in its owner's trail.
func (s *Service) auditWarning(ctx context.Context, p store.AppPassword, at time.Time) {
	who := SystemRetire
	s.logger().InfoContext(ctx, "unused app password will be removed", "user", p.Username,
		"app_password_id", p.ID, "on", at.Format(time.DateOnly))
	rec := store.AuditRecord{Time: s.now(), Protocol: who.protocol(p.Username), Username: p.Username,
		Result: ResultAppPasswordRetireWarning, Actor: who.String(), AppPasswordID: p.ID,
		AppPasswordName: p.Name, RemovalOn: at.UTC()}
	s.recordAudit(ctx, rec)
}
