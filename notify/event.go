package notify

import (
	"slices"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// Audit results of first-use binding (issue 16, item 1) that notify, as
// authn writes them.
const (
	// ResultDeviceFirstUse: an app password's first successful login;
	// the record's Device is what it was bound to.
	ResultDeviceFirstUse = authn.AuditDeviceFirstUse
	// ResultDeviceDrift: a login allowed from a device that differs.
	ResultDeviceDrift = authn.AuditDeviceDrift
	// ResultDeviceRefused: a login refused because the device differs.
	ResultDeviceRefused = string(authn.DeviceRefused)
)

// event is how one kind of audit record is told.
type event struct {
	// byAdmin: told only when someone other than the owner did it.
	byAdmin bool
	// collapse: repeats of the same password and device within
	// CollapseWindow are told once.
	collapse bool
	// device: a login makes it, so whoever holds a stolen password can
	// make many; it counts against the device events' budget (limit.go).
	device bool
}

// events are the audit results that are told to the account's owner.
var events = map[string]event{
	account.ResultAppPasswordCreated:       {},
	ResultDeviceFirstUse:                   {device: true},
	ResultDeviceDrift:                      {collapse: true, device: true},
	ResultDeviceRefused:                    {collapse: true, device: true},
	account.ResultMFAReset:                 {byAdmin: true},
	account.ResultAppPasswordsDeleted:      {byAdmin: true},
	account.ResultAppPasswordRetireWarning: {},
	account.ResultAppPasswordRetired:       {},
}

// Events lists the audit results that notify, sorted.
func Events() []string {
	out := make([]string, 0, len(events))
	for r := range events {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Notifies reports whether rec is told to its owner: its result is one
// of Events, and an administrator's action was not the owner's own.
func Notifies(rec store.AuditRecord) bool {
	ev, ok := events[rec.Result]
	if !ok || rec.Username == "" {
		return false
	}
	return !ev.byAdmin || rec.Protocol == account.ProtocolAdmin
}

// dataOf is what the templates of rec show.
func dataOf(rec store.AuditRecord, portalURL string) Data {
	d := Data{Event: rec.Result, Username: rec.Username, PasswordName: rec.AppPasswordName,
		Time: rec.Time, RemovalOn: rec.RemovalOn, Protocol: rec.Protocol, PortalURL: portalURL}
	if rec.Remote.Addr().IsValid() {
		d.Remote = rec.Remote.Addr().String()
	}
	if dev := rec.Device; dev != nil {
		d.Device = true
		d.Client = dev.Client
		d.TLS = dev.TLS
		if dev.Network.IsValid() {
			d.Network = dev.Network.String()
		}
	}
	if d.Client == "" {
		d.Client = rec.Client
	}
	if !d.Device {
		// Only the device events show where; the protocol of an account
		// change is "admin" or "portal", not a door the owner used.
		d.Protocol = ""
	}
	return d
}
