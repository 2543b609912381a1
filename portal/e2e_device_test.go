package portal

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// TestBrowserDevices drives the devices and drift pages (issue 16) in a
// real headless Chromium: an MFA user signs in with a TOTP code, sees her
// passwords' devices, opens the drift events of one, accepts its new
// device and changes its policy. Screenshots go where artifactDir says;
// their names are logged.
func TestBrowserDevices(t *testing.T) {
	f := newFixture(t, nil)
	const alice, pw = "alice@example.org", "alice primary password"
	f.account(alice, pw, true)
	secret, _ := f.enrolDirect(alice)
	ctx, svc, now := context.Background(), f.setup(), f.clock.Now()
	id := seedDevice(t, f.db, svc, alice, "Phone", now)
	f.clock.Advance(time.Minute) // the list is oldest first
	laptop, err := svc.CreateAppPassword(ctx, testActor, alice, "Work laptop", account.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.db.UpdateAppPassword(ctx, alice, laptop.ID, func(p *store.AppPassword) error {
		p.Bound = &store.DeviceBinding{Device: devLaptop, Protocol: "imap", Time: now.Add(-72 * time.Hour)}
		p.DevicePolicy = store.DevicePolicyBlock
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	use := store.LastUse{Time: now.Add(-2 * time.Hour), IP: netip.MustParseAddr("198.51.100.40"), Protocol: "imap", Client: "Thunderbird/128.3"}
	if err := f.db.TouchAppPassword(ctx, alice, laptop.ID, use); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := svc.CreateAppPassword(ctx, testActor, alice, "Tablet", account.AppPasswordOptions{}); err != nil {
		t.Fatal(err)
	}

	c := newChrome(t, f.ts.URL)
	defer func() { t.Logf("screenshots in %s:\n%s", c.shots, strings.Join(c.listed, "\n")) }()
	c.signIn(alice, pw)
	c.expectAt("/signin/code", "Two-step verification")
	c.do(c.typeInto("#code", f.code(secret, 0)))
	c.submit(`form[action="/signin/code"] button`)
	c.expectAt("/app-passwords", "App passwords")

	row := c.text("#app-" + id)
	for _, want := range []string{"Phone", "K-9 Mail", fingerprint(devPhone.TLS), "192.0.2.0/24", "first used", "2 new sign-ins from another device"} {
		if !strings.Contains(row, want) {
			t.Errorf("Phone's row lacks %q: %q", want, row)
		}
	}
	title := c.eval(`document.querySelector("#app-` + id + ` td.device code").title`)
	if title != "TLS fingerprint: "+devPhone.TLS {
		t.Errorf("the shortened fingerprint's title is %q, want the full fingerprint", title)
	}
	if sel := c.eval(`document.getElementById("policy-` + laptop.ID + `").value`); sel != "block" {
		t.Errorf("Work laptop's policy shows %q, want block", sel)
	}
	c.shot("device-1-app-passwords.png", "app passwords with devices: Phone (K-9 Mail, 2 new sign-ins from another device), Work laptop (bound, policy Refuse it), Tablet (not used yet)")

	c.load(chromedp.Click(chromedp.CSS(`a[href="/app-passwords/` + id + `/devices"]`)))
	c.expectAt("/app-passwords/"+id+"/devices", "Devices of “Phone”")
	events := c.text("#drift-events tbody")
	if !strings.Contains(events, "Thunderbird") || !strings.Contains(events, "refused") || !strings.Contains(events, devCurl.TLS) {
		t.Errorf("drift events on the page: %q", events)
	}
	if n := c.eval(`String(document.querySelectorAll("#drift-events tbody tr").length)`); n != "2" {
		t.Errorf("%s drift events listed, want 2", n)
	}
	c.shot("device-2-drift.png", "Phone's devices page: its device, two sign-ins from other devices (Thunderbird allowed, curl-like refused), the accept button, what to do if it was not you")

	c.submit("#accept-device")
	c.expectAt("/app-passwords/"+id+"/devices", "Devices of “Phone”")
	if flash := c.text(".notice.ok"); !strings.Contains(flash, "“Phone” now belongs to Thunderbird from 198.51.100.0/24") {
		t.Errorf("message after accepting: %q", flash)
	}
	if dev := c.text("#bound-device"); !strings.Contains(dev, devLaptop.TLS) || !strings.Contains(dev, "Thunderbird") {
		t.Errorf("bound device after accepting: %q", dev)
	}
	c.shot("device-3-accepted.png", "after \"Yes, that was me\": confirmation, Thunderbird is the device, nothing waiting, no accept button")
	if got := f.bound(alice, id); got != devLaptop {
		t.Fatalf("stored binding %+v after the click, want the laptop", got)
	}

	c.open("/app-passwords")
	if row := c.text("#app-" + id); strings.Contains(row, "new sign-in") || !strings.Contains(row, "Thunderbird") {
		t.Errorf("Phone's row after accepting: %q", row)
	}
	c.do(chromedp.SetValue(chromedp.CSS("#policy-"+id), "block"))
	c.submit(`form[action="/app-passwords/` + id + `/policy"] button`)
	c.expectAt("/app-passwords", "App passwords")
	if flash := c.text(".notice.ok"); flash != "“Phone”, when used from another device: Refuse it." {
		t.Errorf("message after the policy change: %q", flash)
	}
	if p := f.appPasswords(alice)[0]; p.ID != id || p.DevicePolicy != store.DevicePolicyBlock {
		t.Errorf("Phone's stored policy %q, want block", p.DevicePolicy)
	}
	c.shot("device-4-app-passwords-after.png", "the list after accepting and setting Phone to Refuse it: Thunderbird bound, no new sign-ins")
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	c.shot("device-5-app-passwords-phone.png", "the same list on a 390px-wide phone screen")
	c.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))

	recs, err := f.db.RecentAudit(ctx, alice, 3)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Result != account.ResultDevicePolicy || recs[1].Result != account.ResultDeviceAccepted || recs[1].Actor != "portal:"+alice {
		t.Errorf("newest audit records %q, %q by %q; want the policy change and the accepted device by the portal user",
			recs[0].Result, recs[1].Result, recs[1].Actor)
	}
}

// eval returns the string value of a JavaScript expression on the page.
func (c *chrome) eval(expr string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		c.t.Fatalf("browser: %s: %v (at %s)", expr, err, c.location())
	}
	return s
}
