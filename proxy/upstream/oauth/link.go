package oauth

import (
	"context"

	"golang.org/x/oauth2"
)

// LinkOptions are the extra parameters of the authorization request with
// which a user links a mailbox in delegated mode. Google issues a refresh
// token only for access_type=offline, and issues a new one (after an
// earlier link) only when consent is asked again; Microsoft issues one for
// the offline_access scope, which its default scopes hold, and needs
// nothing more (prompt=consent would refuse users whose tenant lets only
// admins consent).
func (s Settings) LinkOptions() []oauth2.AuthCodeOption {
	if s.Provider == ProviderGoogle {
		return []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce}
	}
	return nil
}

// Check validates the settings and reads the files they name, as Source
// does, without a refresh token store: for configuration checks at load.
func (s Settings) Check() error {
	_, err := s.Source(checkOnly{})
	return err
}

// checkOnly stands in for the refresh token store while checking.
type checkOnly struct{}

func (checkOnly) RefreshToken(context.Context, string) (string, error)           { return "", ErrNotLinked }
func (checkOnly) SwapRefreshToken(context.Context, string, string, string) error { return nil }
