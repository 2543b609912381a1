package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// login is one login of any protocol: the credential is built before
// anything is dialled, then a link is connected and dialogue runs the
// protocol's part on it (greeting, STARTTLS, the login itself); an OAuth
// token the server calls invalid is replaced once (oauthmode.go). On success
// the returned link is released (no deadline, no longer tied to ctx; its
// conn is the caller's); on failure it is closed. Each outcome is one Debug
// line.
func (c *Config) login(ctx context.Context, p protocol, l Login, dialogue func(*link, credential) error) (*link, error) {
	if err := c.usable(p); err != nil {
		return nil, err
	}
	if c.mode().NeedsTokens() && c.Tokens == nil {
		// Checks and probes need no tokens, logins do.
		return nil, fmt.Errorf("upstream: %w: %w", ErrUnavailable,
			&FieldError{Field: "login", Msg: fmt.Sprintf("%s needs OAuth 2.0 access tokens: configure [oauth]", c.mode())})
	}
	start := time.Now()
	k, cred, err := c.attempt(ctx, l, dialogue)
	var stale *staleTokenError
	if errors.As(err, &stale) {
		// The cached token expired early or was revoked: one fresh token,
		// one more login; a second refusal is final.
		c.Tokens.Invalidate(l.Username, cred.token)
		if k, _, err = c.attempt(ctx, l, dialogue); errors.As(err, &stale) {
			err = stale.refused()
		}
	}
	if c.Metrics != nil {
		c.Metrics.UpstreamLogin(p.name, time.Since(start), err)
	}
	if log := c.logger(); log.Enabled(ctx, slog.LevelDebug) {
		// Only then: the attributes cost allocations on every login.
		log = log.With("upstream", c.Address, "user", l.Username, "client", l.ClientID, "mode", c.mode())
		if err != nil {
			log.Debug("upstream login failed", "err", err)
		} else {
			log.Debug("upstream login", "duration", time.Since(start), "pooled", k.greeted != nil)
		}
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// attempt builds the credential, takes a ready link from the pool (IMAP)
// or connects, and runs dialogue: one try.
func (c *Config) attempt(ctx context.Context, l Login, dialogue func(*link, credential) error) (*link, credential, error) {
	cred, err := c.authenticator().credential(ctx, l)
	if err != nil {
		return nil, cred, err
	}
	var k *link
	if w := c.pool.take(ctx, c.loginDeadline(ctx)); w != nil {
		k = w.link
		k.greeted = w
	} else if k, err = c.connectFor(ctx, l.ClientIP); err != nil {
		return nil, cred, err
	}
	if err = dialogue(k, cred); err == nil {
		err = k.release()
	}
	if err != nil {
		k.close()
		return nil, cred, err
	}
	return k, cred, nil
}
