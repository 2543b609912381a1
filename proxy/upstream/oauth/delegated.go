package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
)

// ErrNotLinked is returned (wrapped) by a RefreshStore that holds no
// refresh token for the user.
var ErrNotLinked = errors.New("oauth: no linked mailbox")

// RefreshStore keeps each user's refresh token (sealed at rest, like the
// TOTP secrets). The portal's link flow stores the first one.
type RefreshStore interface {
	// RefreshToken returns user's refresh token, or an error wrapping
	// ErrNotLinked if there is none.
	RefreshToken(ctx context.Context, user string) (string, error)
	// SwapRefreshToken replaces user's refresh token old by new if old is
	// still the one stored, and otherwise changes nothing (the user linked
	// again meanwhile) and returns nil. An empty new removes it: the
	// provider refused old for good and the user must link again.
	SwapRefreshToken(ctx context.Context, user, old, new string) error
}

// Delegated fetches tokens with each user's own refresh token (RFC 6749
// §6), obtained when the user linked the mailbox in the portal. A refresh
// token the provider rotates is saved at once; one it refuses for good
// (invalid_grant) is removed from the store and reported as
// ErrRelinkNeeded.
//
// Fetch must not run twice at once for one user (a provider that rotates
// refresh tokens accepts each only once); the Cache ensures that within
// one passgate instance.
type Delegated struct {
	// Config is the client (id, secret, endpoint, scopes).
	Config *oauth2.Config
	Store  RefreshStore
	// HTTPClient makes the requests; if nil, http.DefaultClient.
	HTTPClient *http.Client
	// Log reports rotated refresh tokens that could not be saved yet; if
	// nil, slog.Default().
	Log *slog.Logger

	mu sync.Mutex
	// pending holds, per user, a rotated refresh token that the store
	// failed to save: it is used and saved again at the next fetch, so that
	// a store hiccup does not lose the only valid refresh token.
	pending map[string]rotation
}

type rotation struct{ old, new string }

var _ Source = (*Delegated)(nil)

// Fetch refreshes user's access token.
func (d *Delegated) Fetch(ctx context.Context, user string) (*oauth2.Token, error) {
	stored, current, err := d.refreshToken(ctx, user)
	if err != nil {
		return nil, err
	}
	t, err := d.Config.TokenSource(withClient(ctx, d.HTTPClient), &oauth2.Token{RefreshToken: current}).Token()
	if err != nil {
		err = fetchError(err)
		var pe *ProviderError
		if errors.As(err, &pe) && pe.Code == "invalid_grant" {
			d.forget(ctx, user, stored)
			return nil, fmt.Errorf("fetch token: %w (%w)", ErrRelinkNeeded, err)
		}
		return nil, err
	}
	if t.RefreshToken != "" && t.RefreshToken != current {
		d.setPending(user, rotation{old: stored, new: t.RefreshToken})
		d.save(ctx, user)
	}
	return t, nil
}

// refreshToken returns the token in the store and the one to use: a
// pending rotation's while the store cannot save it; once it can, the
// store's, which is the pending one unless the user linked again meanwhile.
func (d *Delegated) refreshToken(ctx context.Context, user string) (stored, current string, err error) {
	if r, ok := d.getPending(user); ok && !d.save(ctx, user) {
		return r.old, r.new, nil
	}
	rt, err := d.Store.RefreshToken(ctx, user)
	if errors.Is(err, ErrNotLinked) {
		return "", "", fmt.Errorf("fetch token: %w: %w", ErrRelinkNeeded, err)
	}
	if err != nil {
		return "", "", fmt.Errorf("fetch token: refresh token store: %w", err)
	}
	if rt == "" {
		return "", "", fmt.Errorf("fetch token: %w: %w", ErrRelinkNeeded, ErrNotLinked)
	}
	return rt, rt, nil
}

// save stores user's pending rotation, and forgets it once stored. It
// reports whether the store has it.
func (d *Delegated) save(ctx context.Context, user string) bool {
	r, ok := d.getPending(user)
	if !ok {
		return false
	}
	if err := d.Store.SwapRefreshToken(ctx, user, r.old, r.new); err != nil {
		d.log().Warn("oauth: rotated refresh token not saved yet; kept in memory and saved at the next refresh",
			"user", user, "err", err)
		return false
	}
	d.mu.Lock()
	delete(d.pending, user)
	d.mu.Unlock()
	return true
}

// forget removes a refresh token the provider refused for good, so that
// the portal shows "link again".
func (d *Delegated) forget(ctx context.Context, user, stored string) {
	d.mu.Lock()
	delete(d.pending, user)
	d.mu.Unlock()
	if err := d.Store.SwapRefreshToken(ctx, user, stored, ""); err != nil {
		d.log().Warn("oauth: could not remove a refused refresh token", "user", user, "err", err)
	}
}

func (d *Delegated) getPending(user string) (rotation, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.pending[user]
	return r, ok
}

func (d *Delegated) setPending(user string, r rotation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = make(map[string]rotation)
	}
	d.pending[user] = r
}

func (d *Delegated) log() *slog.Logger {
	if d.Log == nil {
		return slog.Default()
	}
	return d.Log
}
