// Package migrate copies a passgate installation from one store to another
// (the embedded bbolt file to Redis, when one instance becomes several):
// the lookup key, accounts, app passwords and recent audit records, so that
// every login decides the same afterwards. It is what
// `passgate store migrate` runs.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/passgate/passgate/store"
)

// LookupKeyImporter is a destination that can adopt the source's lookup
// key: set if absent, unchanged if equal, and refused (store.ErrExists) if
// a different key is in use by app passwords.
type LookupKeyImporter interface {
	ImportLookupKey(ctx context.Context, key []byte) error
}

// Source is what Run reads.
type Source interface {
	ListAccounts(ctx context.Context) ([]store.Account, error)
	ListAppPasswords(ctx context.Context, username string) ([]store.AppPassword, error)
	RecentAudit(ctx context.Context, username string, n int) ([]store.AuditRecord, error)
	LookupKey(ctx context.Context) ([]byte, error)
}

// Dest is where Run writes.
type Dest interface {
	store.Store
	store.AuditLog
	LookupKeyImporter
}

// Lookup-key outcomes of Counts.LookupKey.
const (
	KeyAdopted   = "adopted"
	KeyNotNeeded = "not-needed" // the source has no app passwords
)

// Counts is what one migrate run did (printed; --json prints it).
type Counts struct {
	LookupKey string `json:"lookup_key"`
	Accounts  struct {
		Created   int `json:"created"`
		Updated   int `json:"updated"`
		Unchanged int `json:"unchanged"`
	} `json:"accounts"`
	AppPasswords struct {
		Created int `json:"created"`
		Present int `json:"present"` // already in the destination: left alone
	} `json:"app_passwords"`
	Audit struct {
		Copied   int  `json:"copied"`   // records
		Accounts int  `json:"accounts"` // accounts they were copied into
		Skipped  int  `json:"skipped"`  // accounts that already had records
		Off      bool `json:"off,omitempty"`
	} `json:"audit"`
}

// Options tune Run.
type Options struct {
	// Audit copies the recent audit records too.
	Audit bool
	// Logger receives warnings. If nil, slog.Default().
	Logger *slog.Logger
}

// Run copies an installation from src (its bbolt file) to dst (Redis, or
// any other store), so that several instances can share it. The source
// keeps its data, and running it again copies only what is new:
//   - the lookup key first (app-password tags are HMACs under it; see
//     LookupKeyImporter), so a refusal there writes nothing at all;
//   - accounts (with aliases, admin flag, MFA and TOTP): created, or
//     overwritten with the source's fields when they differ;
//   - app passwords: created; one whose ID the destination already has is
//     left alone;
//   - the recent audit records (with Options.Audit): copied into accounts
//     that have none in the destination yet.
//
// Nothing is deleted from the destination: an app password revoked in the
// source after a first run stays in the destination (revoke it there).
func Run(ctx context.Context, src Source, dst Dest, opts Options) (Counts, error) {
	audit, log := opts.Audit, opts.Logger
	if log == nil {
		log = slog.Default()
	}
	var c Counts
	c.Audit.Off = !audit
	accounts, err := src.ListAccounts(ctx)
	if err != nil {
		return c, fmt.Errorf("read source accounts: %w", err)
	}
	pws := make(map[string][]store.AppPassword, len(accounts))
	total := 0
	for _, a := range accounts {
		if pws[a.Username], err = src.ListAppPasswords(ctx, a.Username); err != nil {
			return c, fmt.Errorf("read source app passwords of %q: %w", a.Username, err)
		}
		total += len(pws[a.Username])
	}
	c.LookupKey = KeyNotNeeded
	if total > 0 {
		if err := adoptLookupKey(ctx, src, dst); err != nil {
			return c, err
		}
		c.LookupKey = KeyAdopted
	}
	for _, a := range accounts {
		if err := copyAccount(ctx, dst, a, &c); err != nil {
			return c, err
		}
		if err := copyAppPasswords(ctx, dst, a.Username, pws[a.Username], &c, log); err != nil {
			return c, err
		}
		if audit {
			if err := copyAudit(ctx, src, dst, a.Username, &c); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// adoptLookupKey makes the destination use the source's lookup key.
func adoptLookupKey(ctx context.Context, src Source, dst Dest) error {
	key, err := src.LookupKey(ctx)
	if err != nil {
		return fmt.Errorf("read source lookup key: %w", err)
	}
	err = dst.ImportLookupKey(ctx, key)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("the destination already holds app passwords of another installation, "+
			"whose lookup key differs from the source's; nothing was copied. "+
			"Migrate into an empty Redis, or choose another key prefix: %w", err)
	}
	if err != nil {
		return fmt.Errorf("adopt the source's lookup key: %w", err)
	}
	return nil
}

// copyAccount creates a, or overwrites the destination's account when its
// fields differ.
func copyAccount(ctx context.Context, dst Dest, a store.Account, c *Counts) error {
	cur, err := dst.GetAccount(ctx, a.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = dst.CreateAccount(ctx, a)
		if err == nil {
			c.Accounts.Created++
			return nil
		}
		if !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("create account %q: %w", a.Username, err)
		}
		// Created meanwhile: overwrite it below.
	case err != nil:
		return fmt.Errorf("read destination account %q: %w", a.Username, err)
	case sameJSON(cur, a):
		c.Accounts.Unchanged++
		return nil
	}
	err = dst.UpdateAccount(ctx, a.Username, func(x *store.Account) error {
		*x = a
		return nil
	})
	if err != nil {
		return fmt.Errorf("update account %q: %w", a.Username, err)
	}
	c.Accounts.Updated++
	return nil
}

// copyAppPasswords creates the app passwords of username that the
// destination lacks.
func copyAppPasswords(ctx context.Context, dst Dest, username string, pws []store.AppPassword, c *Counts, log *slog.Logger) error {
	if len(pws) == 0 {
		return nil
	}
	have, err := dst.ListAppPasswords(ctx, username)
	if err != nil {
		return fmt.Errorf("read destination app passwords of %q: %w", username, err)
	}
	ids := make(map[string]bool, len(have))
	for _, p := range have {
		ids[p.ID] = true
	}
	for _, p := range pws {
		if ids[p.ID] {
			c.AppPasswords.Present++
			continue
		}
		err := dst.CreateAppPassword(ctx, p)
		if errors.Is(err, store.ErrExists) {
			// Another ID with the same tag: the same secret is already
			// there, so logins work; keep the destination's.
			log.Warn("app password skipped: the destination has the same secret under another ID",
				"username", username, "id", p.ID)
			c.AppPasswords.Present++
			continue
		}
		if err != nil {
			return fmt.Errorf("create app password %q of %q: %w", p.ID, username, err)
		}
		c.AppPasswords.Created++
	}
	return nil
}

// copyAudit copies username's recent audit records, oldest first, if the
// destination has none for the account.
func copyAudit(ctx context.Context, src Source, dst Dest, username string, c *Counts) error {
	have, err := dst.RecentAudit(ctx, username, 1)
	if err != nil {
		return fmt.Errorf("read destination audit of %q: %w", username, err)
	}
	if len(have) > 0 {
		c.Audit.Skipped++
		return nil
	}
	recs, err := src.RecentAudit(ctx, username, store.AuditMax)
	if err != nil {
		return fmt.Errorf("read source audit of %q: %w", username, err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if err := dst.AppendAudit(ctx, recs[i]); err != nil {
			return fmt.Errorf("copy audit of %q: %w", username, err)
		}
	}
	if len(recs) > 0 {
		c.Audit.Copied += len(recs)
		c.Audit.Accounts++
	}
	return nil
}

// sameJSON reports whether a and b encode alike (what the stores keep).
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
