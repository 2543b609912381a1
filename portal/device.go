package portal

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// First-use binding in the portal (issue 16): the app-password list shows
// each password's device and policy, and a page per password lists its
// drift events, where the owner accepts the newest device ("yes, that was
// me") or is told to revoke the password. Changes go through the account
// service, which audits them.

// deviceFacts are what the pages say about a password's device.
type deviceFacts struct {
	// FirstUsed is when the bound device was first seen: the binding,
	// or, for an accepted device, its earliest drift event still kept.
	FirstUsed time.Time
	// NewDrift counts the drift events since the binding: sign-ins from
	// another device that the owner has not accepted.
	NewDrift int
}

func devicesOf(p store.AppPassword) deviceFacts {
	if p.Bound == nil {
		return deviceFacts{NewDrift: len(p.Drift)}
	}
	f := deviceFacts{FirstUsed: p.Bound.Time}
	for _, e := range p.Drift {
		if e.Time.After(p.Bound.Time) {
			f.NewDrift++
		} else if e.Device == p.Bound.Device && e.Time.Before(f.FirstUsed) {
			f.FirstUsed = e.Time
		}
	}
	return f
}

// driftRow is one drift event as the devices page lists it.
type driftRow struct {
	store.DriftEvent
	New bool // after the binding: not accepted
}

type devicesData struct {
	P      appPasswordRow
	Events []driftRow // newest first
	// Seen is the newest event's time (UnixNano) when it is new: the
	// accept form names the event the owner saw.
	Seen string
}

// devicesPage lists a password's device and its drift events.
func (s *Server) devicesPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p, ok := s.appPasswordOrBack(w, r, rc)
	if !ok {
		return
	}
	d := devicesData{P: s.appPasswordRows([]store.AppPassword{p})[0]}
	for i := len(p.Drift) - 1; i >= 0; i-- {
		e := p.Drift[i]
		d.Events = append(d.Events, driftRow{DriftEvent: e, New: p.Bound == nil || e.Time.After(p.Bound.Time)})
	}
	if len(d.Events) > 0 && d.Events[0].New {
		d.Seen = strconv.FormatInt(d.Events[0].Time.UnixNano(), 10)
	}
	pg := s.pageFor(r, rc, "Devices of “"+p.Name+"”", "app-passwords")
	pg.Data = d
	s.render(w, r, http.StatusOK, "devices.html", pg)
}

// acceptDevice binds the password to the device of the drift event the
// page showed as the newest, if it still is.
func (s *Server) acceptDevice(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	p, ok := s.appPasswordOrBack(w, r, rc)
	if !ok {
		return
	}
	back := "/app-passwords/" + p.ID + "/devices"
	seen, err := strconv.ParseInt(r.PostFormValue("seen"), 10, 64)
	if err != nil || seen == 0 {
		s.setFlash(ctx, rc, "There is no new device to accept.")
		s.redirect(w, r, back)
		return
	}
	info, err := s.accounts().AcceptSeenDevice(ctx, s.actor(r, rc), rc.acct.Username, p.ID, time.Unix(0, seen))
	var fe *account.FieldError
	switch {
	case errors.Is(err, account.ErrNewerDrift):
		s.setFlash(ctx, rc, "“"+p.Name+"” was used from another device while this page was open, so nothing was accepted. "+
			"Look at the sign-ins below again before you accept.")
	case errors.As(err, &fe) && fe.Field == "id" && errors.Is(err, store.ErrNotFound):
		s.setFlash(ctx, rc, "That app password no longer exists.")
		s.redirect(w, r, "/app-passwords")
		return
	case errors.As(err, &fe):
		s.setFlash(ctx, rc, "There is no new device to accept.")
	case err != nil:
		s.unavailable(w, r, err)
		return
	default:
		s.setFlash(ctx, rc, fmt.Sprintf("“%s” now belongs to %s. Sign-ins from it are no longer reported.",
			info.Name, deviceName(info.Bound.Device)))
	}
	s.redirect(w, r, back)
}

// policyLabels are the device policies as the forms offer them, in order.
var policyLabels = []struct{ Value, Label string }{
	{"default", "Installation default"},
	{store.DevicePolicyNotify, "Allow it and tell me"},
	{store.DevicePolicyBlock, "Refuse it"},
	{store.DevicePolicyOff, "Do not check"},
}

// policyLabel names a password's device policy ("" the default).
func policyLabel(policy string) string {
	if policy == store.DevicePolicyDefault {
		policy = "default"
	}
	for _, l := range policyLabels {
		if l.Value == policy {
			return l.Label
		}
	}
	return policy
}

// setDevicePolicy changes what a sign-in from another device does.
func (s *Server) setDevicePolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	p, ok, err := s.findAppPassword(r, rc)
	if err == nil && ok {
		_, err = s.accounts().SetDevicePolicy(ctx, s.actor(r, rc), rc.acct.Username, p.ID, r.PostFormValue("policy"))
	}
	var fe *account.FieldError
	switch {
	case (err == nil && !ok) || errors.Is(err, store.ErrNotFound):
		s.setFlash(ctx, rc, "That app password no longer exists.")
	case errors.As(err, &fe) && fe.Field == "policy":
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "Choose one of the offered settings.")
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	default:
		s.setFlash(ctx, rc, "“"+p.Name+"”, when used from another device: "+policyLabel(r.PostFormValue("policy"))+".")
	}
	s.redirect(w, r, "/app-passwords")
}

// deviceName is a device in a sentence: its client and network.
func deviceName(d store.Device) string {
	name := d.Client
	if name == "" {
		name = "an unnamed client"
	}
	if d.Network.IsValid() {
		name += " from " + d.Network.String()
	}
	return name
}

// fingerprint shortens a TLS fingerprint for a table cell; the pages give
// the full value in a title and on the devices page.
func fingerprint(fp string) string {
	const head, tail = 10, 6
	if len(fp) <= head+tail+3 {
		return fp
	}
	return fp[:head] + "…" + fp[len(fp)-tail:]
}
