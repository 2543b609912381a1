package account

import (
	"context"
	"errors"
	"time"
)

// ErrNewerDrift: a login from another device came in after the drift
// event the owner was shown, so accepting "the newest device" would
// accept one they never saw.
var ErrNewerDrift = errors.New("a newer login from another device came in")

// AcceptSeenDevice is AcceptDevice for an owner who was shown the drift
// event of time seen as the newest one (the portal's "yes, that was me"):
// it binds only if that event is still the newest, so that a login from
// yet another device between the page and the click (an attacker's, say)
// is never accepted unseen. A FieldError "seen" wrapping ErrNewerDrift if
// it is not; "seen" without wrapping if seen is zero.
func (s *Service) AcceptSeenDevice(ctx context.Context, who Actor, username, id string, seen time.Time) (AppPasswordInfo, error) {
	if seen.IsZero() {
		return AppPasswordInfo{}, fieldErr("seen", nil, "the drift event to accept is required")
	}
	return s.acceptDevice(ctx, who, username, id, seen)
}

func errNewerDrift(user, id string) *FieldError {
	return fieldErr("seen", ErrNewerDrift, "app password %q of %s was used from another device since; look at its devices again", id, user)
}
