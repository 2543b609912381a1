package authn

import (
	"net/netip"
	"time"

	"github.com/passgate/passgate/store"
)

// Expires is when the app password of an OK decision expires, zero if it
// never does or the login used the primary password: a session that
// logged in with it must end then.
func (d Decision) Expires() time.Time {
	if d.restrict == nil {
		return time.Time{}
	}
	return d.restrict.expires
}

// Revalidate decides again, without the secret, whether the OK decision d
// still holds for a session open over proto from remote at now, given what
// the store holds now for its credential (cur, from store.CheckSessions).
// It returns OK, or the Result a new login with the same credential would
// get: UnknownUser (no account), Disabled, BadSecret (app password revoked,
// or primary password changed), Expired, AddressDenied, ScopeDenied, or
// PrimaryRefusedMFA (MFA turned on). A decision other than OK stays what
// it was.
func (d Decision) Revalidate(cur store.SessionState, proto store.Scope, remote netip.Addr, now time.Time) Result {
	a := cur.Account
	switch {
	case d.Result != OK:
		return d.Result
	case a == nil:
		return UnknownUser
	case a.Disabled:
		return Disabled
	case d.AppPasswordID == "":
		return revalidatePrimary(d, a)
	}
	p := cur.AppPassword
	switch {
	case p == nil || p.ID != d.AppPasswordID:
		return BadSecret
	case !p.Expires.IsZero() && !p.Expires.After(now):
		return Expired
	case !allowed(p.AllowFrom, remote):
		return AddressDenied
	case !p.HasScope(proto):
		return ScopeDenied
	}
	return OK
}

// revalidatePrimary is Revalidate for a primary-password login of an
// enabled account a: the password that verified it must be unchanged.
func revalidatePrimary(d Decision, a *store.Account) Result {
	switch {
	case d.restrict == nil || d.restrict.primaryHash != a.PasswordHash:
		return BadSecret
	case a.MFA:
		return PrimaryRefusedMFA
	}
	return OK
}
