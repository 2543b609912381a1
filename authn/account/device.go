package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/passgate/passgate/store"
)

// Audit results of first-use binding's account changes (the login-side
// ones, "device-first-use", "device-drift" and "device-refused", are
// authn's).
const (
	// ResultDeviceAccepted: the owner accepted the device of the most
	// recent drift event as the password's device ("yes, that was me").
	ResultDeviceAccepted = "device-accepted"
	// ResultDevicePolicy: a password's device policy was changed.
	ResultDevicePolicy = "device-policy"
)

// AcceptDevice binds app password id (or name) of username to the device
// of its most recent drift event, so that logins from that device are no
// longer drift (nor, under the block policy, refused). The drift events
// stay, as history. A FieldError "id" if there is no such password or it
// has no drift event.
func (s *Service) AcceptDevice(ctx context.Context, who Actor, username, id string) (AppPasswordInfo, error) {
	return s.acceptDevice(ctx, who, username, id, time.Time{})
}

// acceptDevice is AcceptDevice; a non-zero seen must be the time of the
// newest drift event (AcceptSeenDevice).
func (s *Service) acceptDevice(ctx context.Context, who Actor, username, id string, seen time.Time) (AppPasswordInfo, error) {
	if err := who.check(); err != nil {
		return AppPasswordInfo{}, err
	}
	user, err := normUser(username)
	if err != nil {
		return AppPasswordInfo{}, err
	}
	errNoDrift := fieldErr("id", nil, "app password %q of %s has no new device to accept", id, user)
	p, err := s.updateAppPassword(ctx, "accept device", user, id, func(p *store.AppPassword) error {
		if len(p.Drift) == 0 {
			return errNoDrift
		}
		last := p.Drift[len(p.Drift)-1]
		if !seen.IsZero() && !last.Time.Equal(seen) {
			return errNewerDrift(user, id)
		}
		p.Bound = &store.DeviceBinding{Device: last.Device, Protocol: last.Protocol, Time: s.now()}
		return nil
	})
	if err != nil {
		return AppPasswordInfo{}, err
	}
	s.auditDevice(ctx, who, user, ResultDeviceAccepted, &p, p.Bound.Device)
	return appPasswordInfo(p), nil
}

// SetDevicePolicy sets what a login of app password id (or name) of
// username from another device does: store.DevicePolicyNotify, Block, Off,
// or "" (also "default") for the installation's policy. A FieldError
// "policy" names a policy that is none of these.
func (s *Service) SetDevicePolicy(ctx context.Context, who Actor, username, id, policy string) (AppPasswordInfo, error) {
	if err := who.check(); err != nil {
		return AppPasswordInfo{}, err
	}
	user, err := normUser(username)
	if err != nil {
		return AppPasswordInfo{}, err
	}
	if strings.EqualFold(policy, "default") {
		policy = store.DevicePolicyDefault
	}
	if !store.ValidDevicePolicy(policy) {
		return AppPasswordInfo{}, fieldErr("policy", nil, "unknown device policy %q (want notify, block, off or default)", policy)
	}
	p, err := s.updateAppPassword(ctx, "set device policy", user, id, func(p *store.AppPassword) error {
		p.DevicePolicy = policy
		return nil
	})
	if err != nil {
		return AppPasswordInfo{}, err
	}
	s.audit(ctx, who, user, ResultDevicePolicy, &p)
	return appPasswordInfo(p), nil
}

// updateAppPassword applies fn to app password idOrName (an ID, else a
// name) of user in the store; a FieldError "id" if there is none.
func (s *Service) updateAppPassword(ctx context.Context, op, user, idOrName string, fn func(*store.AppPassword) error) (store.AppPassword, error) {
	p, err := s.findAppPassword(ctx, op, user, idOrName)
	if err != nil {
		return store.AppPassword{}, err
	}
	updated, err := s.Store.UpdateAppPassword(ctx, user, p.ID, fn)
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		return store.AppPassword{}, fe
	case errors.Is(err, store.ErrNotFound): // revoked meanwhile
		return store.AppPassword{}, fieldErr("id", err, "%s has no app password with ID or name %q", user, idOrName)
	case err != nil:
		return store.AppPassword{}, fmt.Errorf("%s %s of %s: %w", op, p.ID, user, err)
	}
	return updated, nil
}

// findAppPassword returns app password idOrName (an ID, else a name, case
// aside) of user; a FieldError "id" if there is none.
func (s *Service) findAppPassword(ctx context.Context, op, user, idOrName string) (store.AppPassword, error) {
	pws, err := s.Store.ListAppPasswords(ctx, user)
	if err != nil {
		return store.AppPassword{}, storeErr(op, user, err)
	}
	i := slices.IndexFunc(pws, func(p store.AppPassword) bool { return p.ID == idOrName })
	if i < 0 {
		i = slices.IndexFunc(pws, func(p store.AppPassword) bool { return strings.EqualFold(p.Name, idOrName) })
	}
	if i < 0 {
		return store.AppPassword{}, fieldErr("id", store.ErrNotFound, "%s has no app password with ID or name %q", user, idOrName)
	}
	return pws[i], nil
}

// auditDevice records a device change of p like audit, with the device.
func (s *Service) auditDevice(ctx context.Context, who Actor, username, result string, p *store.AppPassword, d store.Device) {
	rec := store.AuditRecord{Time: s.now(), Protocol: who.protocol(username), Username: username,
		Remote: who.Remote, Client: who.Client, Result: result, Actor: who.String(),
		AppPasswordID: p.ID, AppPasswordName: p.Name, Device: &d}
	s.logger().InfoContext(ctx, "account change", "actor", rec.Actor, "user", username, "change", result,
		"app_password_id", p.ID)
	s.recordAudit(ctx, rec)
}
