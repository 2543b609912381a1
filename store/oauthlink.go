package store

import "time"

// OAuthLink is an account's link to its mailbox at an OAuth 2.0 provider
// (Microsoft 365, Google Workspace): the refresh token the user granted in
// the portal, with which passgate gets access tokens for the upstream
// login. It lives in the account, not in the KV, because it must outlive
// restarts and reach every instance, and because swapping a rotated token
// needs UpdateAccount's compare-and-set.
type OAuthLink struct {
	// RefreshEnc is the refresh token sealed with the portal's key
	// (AES-256-GCM, the username as additional data), never the token.
	// Empty once the provider refused the token for good: the user must
	// link again.
	RefreshEnc []byte `json:"refresh_enc,omitempty"`
	// Linked is when the user last linked the mailbox.
	Linked time.Time `json:"linked"`
	// Refused is when the provider refused the refresh token for good
	// (revoked, expired, password changed); zero while it works.
	Refused time.Time `json:"refused,omitzero"`
}

// Usable reports whether the link holds a refresh token.
func (l *OAuthLink) Usable() bool { return l != nil && len(l.RefreshEnc) > 0 }
