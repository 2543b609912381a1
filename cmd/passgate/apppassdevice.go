package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// appPassAcceptDevice: passgate apppass accept-device USER ID.
func appPassAcceptDevice(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass accept-device")
	pos, err := parseArgs(fs, args, 2, "USER ID")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var p account.AppPasswordInfo
		if err := call(ctx, a, &p, "AcceptDevice", pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "app password %q (%s) of %s is now bound to %s\n", p.Name, p.ID, pos[0], deviceString(p.Bound.Device))
		return nil
	})
}

// appPassPolicy: passgate apppass policy USER ID notify|block|off|default.
func appPassPolicy(ctx context.Context, e env, args []string) error {
	fs, cfg := newFlags("apppass policy")
	pos, err := parseArgs(fs, args, 3, "USER ID notify|block|off|default")
	if err != nil {
		return err
	}
	return withAccounts(ctx, e, *cfg, func(a accounts) error {
		var p account.AppPasswordInfo
		if err := call(ctx, a, &p, "SetDevicePolicy", pos[0], pos[1], pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "app password %q (%s) of %s: device policy %s\n", p.Name, p.ID, pos[0], policyString(p.DevicePolicy))
		return nil
	})
}

// deviceColumns are the DEVICE, POLICY and DRIFT columns of apppass list.
func deviceColumns(p account.AppPasswordInfo) string {
	dev := "-"
	if p.Bound != nil {
		dev = deviceString(p.Bound.Device)
	}
	drift := "-"
	if n := len(p.Drift); n > 0 {
		last := p.Drift[n-1]
		drift = strconv.Itoa(n) + ", last " + last.Time.Format("2006-01-02 15:04") + " " + deviceString(last.Device)
		if last.Refused {
			drift += " (refused)"
		}
	}
	return dev + "\t" + policyString(p.DevicePolicy) + "\t" + drift
}

// deviceString shows a device on one line: client name, TLS fingerprint,
// network.
func deviceString(d store.Device) string {
	var parts []string
	for _, s := range []string{d.Client, d.TLS} {
		if s != "" {
			parts = append(parts, strconv.Quote(s))
		}
	}
	if d.Network.IsValid() {
		parts = append(parts, d.Network.String())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func policyString(p string) string {
	if p == "" {
		return "default"
	}
	return p
}
