package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passgate/passgate/store"
)

// First-use binding (issue 16). An app password is bound to the device of
// its first successful login (store.DeviceBinding); a later login whose
// device differs is drift. The rules (Drifted):
//
//   - TLS: the fingerprints differ, including a login with TLS after one
//     without or the reverse (a thief on a plain connection is drift).
//   - Client: both have a name, from the same protocol, and the names
//     differ. A missing name on either side is no drift (many clients
//     send no IMAP ID; an EHLO address literal is no name), and an IMAP
//     ID name is never compared with an EHLO name.
//   - Network: both have one and they differ (/24 of IPv4, /48 of IPv6).
//
// What drift does is the password's policy, else Verifier.DevicePolicy:
// notify lets the login in, stores a drift event and audits
// "device-drift"; block refuses it with DeviceRefused (the Guard counts it
// as a failed login) and stores and audits it; off does nothing, not even
// bind. A drift from the device of the newest drift event within
// driftRepeat is not stored nor audited again (a phone that moved checks
// mail every few minutes); a block still refuses it. Attempts that carry
// no device (no TLS, no name, no network) are not checked.

// Results of first-use binding.
const (
	// DeviceRefused: the secret was right but the device differs from
	// the bound one and the policy is block.
	DeviceRefused Result = "device-refused"
)

// Audit results of first-use binding besides DeviceRefused, recorded next
// to the login's own "ok" record.
const (
	// AuditDeviceFirstUse: an app password's first successful login bound
	// it to the device (Device = what it bound).
	AuditDeviceFirstUse = "device-first-use"
	// AuditDeviceDrift: a login allowed by the notify policy from a
	// device other than the bound one (Device = the new one).
	AuditDeviceDrift = "device-drift"
)

// DefaultDevicePolicy is the installation's device policy when
// Verifier.DevicePolicy is empty.
const DefaultDevicePolicy = store.DevicePolicyNotify

// driftRepeat is how long a drift from the device of the newest drift
// event is not recorded again.
const driftRepeat = time.Hour

// Drifted reports whether seen, from a login over protocol, is another
// device than the bound one, by the rules above.
func Drifted(bound store.DeviceBinding, seen store.Device, protocol string) bool {
	b := bound.Device
	switch {
	case b.TLS != seen.TLS:
		return true
	case b.Client != "" && seen.Client != "" && bound.Protocol == protocol && b.Client != seen.Client:
		return true
	case b.Network.IsValid() && seen.Network.IsValid() && b.Network != seen.Network:
		return true
	}
	return false
}

// deviceNote is what the device check of a login did, for the audit.
type deviceNote string

const (
	noteNone     deviceNote = ""
	noteFirstUse deviceNote = AuditDeviceFirstUse
	noteDrift    deviceNote = AuditDeviceDrift
	noteRefused  deviceNote = deviceNote(DeviceRefused)
)

// errUnchanged aborts an UpdateAppPassword that has nothing to store.
var errUnchanged = errors.New("device check: nothing to store")

// devicePolicy is p's policy, else the installation's.
func (v *Verifier) devicePolicy(p *store.AppPassword) string {
	switch {
	case p.DevicePolicy != "":
		return p.DevicePolicy
	case v.DevicePolicy != "":
		return v.DevicePolicy
	}
	return DefaultDevicePolicy
}

// checkDevice applies first-use binding to an OK decision of an app
// password whose record (as just read) is p: it binds a first use,
// records drift and, under the block policy, turns d into DeviceRefused.
// A login from the bound device costs no store write. The binding and
// the drift event are decided again inside one store transaction, so
// that of two concurrent first logins from different devices one binds
// and the other is drift.
func (v *Verifier) checkDevice(ctx context.Context, a Attempt, d Decision, p *store.AppPassword) (Decision, deviceNote, error) {
	if d.Result != OK || d.AppPasswordID == "" || a.Device.IsZero() {
		return d, noteNone, nil
	}
	proto := string(a.Protocol)
	if note, write := v.deviceVerdict(p, a.Device, proto); !write {
		return refuseIf(d, note), noteNone, nil
	}
	var note deviceNote
	_, err := v.Store.UpdateAppPassword(ctx, d.Username, d.AppPasswordID, func(p *store.AppPassword) error {
		var write bool
		note, write = v.deviceVerdict(p, a.Device, proto)
		if !write {
			return errUnchanged
		}
		now := v.now()
		if note == noteFirstUse {
			p.Bound = &store.DeviceBinding{Device: a.Device, Protocol: proto, Time: now}
			return nil
		}
		p.AddDrift(store.DriftEvent{Time: now, Protocol: proto, IP: a.RemoteIP.Unmap(), Device: a.Device,
			Refused: note == noteRefused})
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return refuseIf(d, note), noteNone, nil
	case errors.Is(err, store.ErrNotFound): // revoked meanwhile
		return Decision{Result: BadSecret, Username: d.Username}, noteNone, nil
	case err != nil:
		return Decision{}, noteNone, fmt.Errorf("device check: %w", err)
	}
	return refuseIf(d, note), note, nil
}

// deviceVerdict says what a login from seen does to p: the note it
// earns, and whether the store must change (a first use, a new drift
// event). A note of noteRefused with write false is a repeated refusal.
func (v *Verifier) deviceVerdict(p *store.AppPassword, seen store.Device, proto string) (deviceNote, bool) {
	policy := v.devicePolicy(p)
	switch {
	case policy == store.DevicePolicyOff:
		return noteNone, false
	case p.Bound == nil:
		return noteFirstUse, true
	case !Drifted(*p.Bound, seen, proto):
		return noteNone, false
	}
	note := noteDrift
	if policy == store.DevicePolicyBlock {
		note = noteRefused
	}
	if n := len(p.Drift); n > 0 {
		last := p.Drift[n-1]
		if last.Device == seen && last.Refused == (note == noteRefused) && v.now().Sub(last.Time) < driftRepeat {
			return note, false
		}
	}
	return note, true
}

// refuseIf turns d into DeviceRefused when note says so.
func refuseIf(d Decision, note deviceNote) Decision {
	if note == noteRefused {
		d.Result = DeviceRefused
		d.restrict = nil
	}
	return d
}
