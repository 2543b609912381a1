package upstream

import (
	"context"
	"time"
)

// login is one login of any protocol: the credential is built before
// anything is dialled, then a link is connected and dialogue runs the
// protocol's part on it (greeting, STARTTLS, the login itself). On success
// the returned link is released (no deadline, no longer tied to ctx; its
// conn is the caller's); on failure it is closed. Each outcome is one Debug
// line.
func (c *Config) login(ctx context.Context, p protocol, l Login, dialogue func(*link, credential) error) (*link, error) {
	if err := c.usable(p); err != nil {
		return nil, err
	}
	cred, err := c.authenticator().credential(ctx, l)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	k, err := c.connectFor(ctx, l.ClientIP)
	if err == nil {
		if err = dialogue(k, cred); err == nil {
			err = k.release()
		}
		if err != nil {
			k.close()
		}
	}
	log := c.logger().With("upstream", c.Address, "user", l.Username, "client", l.ClientID, "mode", c.mode())
	if err != nil {
		log.Debug("upstream login failed", "err", err)
		return nil, err
	}
	log.Debug("upstream login", "duration", time.Since(start))
	return k, nil
}
