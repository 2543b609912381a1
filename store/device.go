package store

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Device policies of an app password (AppPassword.DevicePolicy) and of the
// installation (config authn.device_policy): what a login from a device
// other than the bound one does.
const (
	// DevicePolicyDefault: the installation's policy (only per password).
	DevicePolicyDefault = ""
	// DevicePolicyNotify: the login is allowed; the drift is recorded and
	// audited so that the owner hears of it.
	DevicePolicyNotify = "notify"
	// DevicePolicyBlock: the login is refused; the drift is recorded and
	// audited.
	DevicePolicyBlock = "block"
	// DevicePolicyOff: no binding, no comparison, no records.
	DevicePolicyOff = "off"
)

// MaxDriftEvents is how many drift events an app password keeps, newest
// last; older ones are dropped.
const MaxDriftEvents = 20

// IsZero reports whether d holds nothing to compare.
func (d Device) IsZero() bool { return d == Device{} }

// DeviceBinding is the device an app password is bound to: set on its
// first successful login, or when the owner accepts a new device.
type DeviceBinding struct {
	Device Device `json:"device"`
	// Protocol is the protocol of the login that bound it ("imap",
	// "smtp", ...): client names are only compared between logins of the
	// same protocol (an IMAP ID name is not an EHLO name).
	Protocol string    `json:"protocol,omitempty"`
	Time     time.Time `json:"time"`
}

// DriftEvent is one login with an app password from a device other than
// the bound one.
type DriftEvent struct {
	Time     time.Time  `json:"time"`
	Protocol string     `json:"protocol,omitempty"`
	IP       netip.Addr `json:"ip,omitzero"`
	Device   Device     `json:"device"`
	// Refused is true when the policy (block) refused the login.
	Refused bool `json:"refused,omitempty"`
}

// AddDrift appends e to p's drift events, keeping the newest
// MaxDriftEvents.
func (p *AppPassword) AddDrift(e DriftEvent) {
	p.Drift = append(p.Drift, e)
	if n := len(p.Drift) - MaxDriftEvents; n > 0 {
		p.Drift = append([]DriftEvent(nil), p.Drift[n:]...)
	}
}

// ValidDevicePolicy reports whether s is a policy an app password may
// have ("" for the installation's).
func ValidDevicePolicy(s string) bool {
	switch s {
	case DevicePolicyDefault, DevicePolicyNotify, DevicePolicyBlock, DevicePolicyOff:
		return true
	}
	return false
}

// CheckAppPasswordUpdate is the check every backend's UpdateAppPassword
// makes of fn's result: nil unless it changed what fn must not change.
func CheckAppPasswordUpdate(before, after *AppPassword) error {
	switch {
	case before.ID != after.ID, before.Username != after.Username, before.Verifier != after.Verifier,
		string(before.Tag) != string(after.Tag):
		return errors.New("the update changed the ID, username, verifier or tag")
	case !before.LastUsed.Time.Equal(after.LastUsed.Time) || before.LastUsed.IP != after.LastUsed.IP ||
		before.LastUsed.Protocol != after.LastUsed.Protocol || before.LastUsed.Client != after.LastUsed.Client:
		return errors.New("the update changed the last use")
	case !ValidDevicePolicy(after.DevicePolicy):
		return fmt.Errorf("unknown device policy %q", after.DevicePolicy)
	}
	return nil
}
