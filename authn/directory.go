package authn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/passgate/passgate/directory"
)

// DefaultDirectoryCacheTTL is how long Directory uses an account state it
// looked up, when CacheTTL is zero.
const DefaultDirectoryCacheTTL = 60 * time.Second

// maxDirectoryStates bounds the cached account states; expired ones are
// dropped first. Only accounts whose secret verified (or that have live
// sessions, or a portal session) are ever looked up, so the bound is a
// guard, not a working limit.
const maxDirectoryStates = 100_000

// Directory ties a Verifier to an operator's user directory (LDAP, Active
// Directory, Dovecot's auth service, the upstream IMAP server):
//
//   - A primary password is verified by Dir, and only after passgate
//     found no app password for the secret; a secret shaped like an app
//     password is never sent (a revoked one still configured in a phone
//     must not lock the account in the directory, which counts failed
//     binds).
//   - An account appears in the store the first time Dir vouches for it
//     (provisioning), without a primary password; the directory's MFA,
//     admin and address state is copied to it then.
//   - Every app-password login, every portal request and every
//     reconciliation of live sessions checks the account's state in Dir
//     (Lookup), cached for CacheTTL: an account deleted or disabled there
//     is refused within that time. While Dir is unreachable the cached
//     state serves until it expires; then logins get a temporary failure,
//     never a false accept.
//
// Set the fields before first use; a Directory must not be copied after.
type Directory struct {
	// Dir is the directory. Required.
	Dir directory.Directory
	// Kind names the directory kind on the accounts it provisions
	// (store.Account.Directory), e.g. "ldap". Required.
	Kind string
	// Admin says that the directory decides who is an administrator:
	// Entry.Admin replaces the account's admin flag whenever the
	// directory vouches for it. False: passgate's own flag stays (kinds
	// or configurations with no admin rule).
	Admin bool
	// CacheTTL is how long a looked-up account state is used. If zero,
	// DefaultDirectoryCacheTTL; negative: no cache (every app-password
	// login asks the directory, and an outage refuses logins at once).
	CacheTTL time.Duration
	// Now is the clock of the cache. If nil, time.Now.
	Now func() time.Time

	mu     sync.Mutex
	states map[string]dirState
	flight singleflight.Group
}

// dirState is one cached Lookup answer: an entry, or ErrNotFound.
type dirState struct {
	entry   directory.Entry
	err     error
	fetched time.Time
}

// ttl is CacheTTL with its default; 0 means no cache.
func (d *Directory) ttl() time.Duration {
	switch {
	case d.CacheTTL == 0:
		return DefaultDirectoryCacheTTL
	case d.CacheTTL < 0:
		return 0
	}
	return d.CacheTTL
}

// RecheckInterval is how often live sessions must be reconciled with the
// directory so that those of an account disabled there end within the
// cache TTL: the smaller of the TTL and interval (the sessions' own
// recheck interval, which it is without a cache).
func (d *Directory) RecheckInterval(interval time.Duration) time.Duration {
	if t := d.ttl(); t > 0 && t < interval {
		return t
	}
	return interval
}

// period names the cache period that now falls in (of the TTL, or of one
// second without a cache), so that a refusal the directory decided is
// remembered no longer than its answers are cached.
func (d *Directory) period() string {
	p := d.ttl()
	if p == 0 {
		p = time.Second
	}
	return strconv.FormatInt(d.now().UnixNano()/int64(p), 10)
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// errRenamed: the directory answered a Lookup of an account with another
// account's name (its mail attribute changed, say); the passgate account
// no longer names anyone there.
var errRenamed = fmt.Errorf("the directory names this account differently now: %w", directory.ErrNotFound)

// state returns what the directory says about the passgate account
// username: the cached answer if younger than the TTL (and fresh is
// false), else a new Lookup, shared by concurrent callers. When the
// directory cannot be asked, a cached answer younger than the TTL still
// serves. Errors: directory.ErrNotFound (deleted), directory.ErrUnsupported
// (the kind cannot look users up: there is no state to check), and any
// other error, which means no answer (a temporary failure).
func (d *Directory) state(ctx context.Context, username string, fresh bool) (directory.Entry, error) {
	e, err, _ := d.lookup(ctx, username, fresh)
	return e, err
}

// lookup is state, and also reports whether the directory failed to
// answer (whether or not a cached answer served instead).
func (d *Directory) lookup(ctx context.Context, username string, fresh bool) (_ directory.Entry, _ error, unreachable bool) {
	ttl := d.ttl()
	cached, ok := d.cached(username)
	live := ok && ttl > 0 && d.now().Sub(cached.fetched) < ttl
	if live && !fresh {
		return cached.entry, cached.err, false
	}
	v, err, _ := d.flight.Do(username, func() (any, error) {
		// Shared: not cancelled when the first caller goes away.
		e, err := d.Dir.Lookup(context.WithoutCancel(ctx), username)
		if err == nil && e.Username != username {
			e, err = directory.Entry{}, errRenamed
		}
		if err == nil || errors.Is(err, directory.ErrNotFound) {
			d.put(username, dirState{entry: e, err: err, fetched: d.now()})
		}
		return e, err
	})
	e, _ := v.(directory.Entry)
	switch {
	case err == nil, errors.Is(err, directory.ErrNotFound), errors.Is(err, directory.ErrUnsupported):
		return e, err, false
	case live:
		return cached.entry, cached.err, true
	}
	return directory.Entry{}, fmt.Errorf("directory state of %q: %w", username, err), true
}

// errNoState: no live cached state (cachedState).
var errNoState = errors.New("no live cached directory state")

// cachedState returns the cached answer about username if it is younger
// than the TTL, else errNoState; it never asks the directory.
func (d *Directory) cachedState(username string) (directory.Entry, error) {
	s, ok := d.cached(username)
	if ttl := d.ttl(); !ok || ttl == 0 || d.now().Sub(s.fetched) >= ttl {
		return directory.Entry{}, errNoState
	}
	return s.entry, s.err
}

func (d *Directory) cached(username string) (dirState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.states[username]
	return s, ok
}

func (d *Directory) put(username string, s dirState) {
	if d.ttl() == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.states == nil {
		d.states = make(map[string]dirState)
	}
	if len(d.states) >= maxDirectoryStates {
		for u, old := range d.states {
			if s.fetched.Sub(old.fetched) >= d.ttl() || len(d.states) >= maxDirectoryStates {
				delete(d.states, u)
			}
		}
	}
	d.states[username] = s
}
