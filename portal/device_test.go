package portal

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// Devices of the seeded passwords: what first-use binding records.
var (
	devPhone = store.Device{Client: "K-9 Mail", TLS: "t13d1516h2_8daaf6152771_e5627efa2ab1",
		Network: netip.MustParsePrefix("192.0.2.0/24")}
	devLaptop = store.Device{Client: "Thunderbird", TLS: "t13d1715h1_5b57614c22b0_3d5424432f57",
		Network: netip.MustParsePrefix("198.51.100.0/24")}
	devCurl = store.Device{Client: "", TLS: "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
		Network: netip.MustParsePrefix("203.0.113.0/24")}
)

// seedDevice creates app password name of user, bound to devPhone an hour
// before now, with two drift events since: curl (refused) and then the
// laptop (allowed), as authn records them. It returns the password's ID.
func seedDevice(t *testing.T, st store.Store, svc *account.Service, user, name string, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	np, err := svc.CreateAppPassword(ctx, testActor, user, name, account.AppPasswordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.UpdateAppPassword(ctx, user, np.ID, func(p *store.AppPassword) error {
		p.Bound = &store.DeviceBinding{Device: devPhone, Protocol: "imap", Time: now.Add(-time.Hour)}
		p.AddDrift(store.DriftEvent{Time: now.Add(-40 * time.Minute), Protocol: "smtp", IP: netip.MustParseAddr("203.0.113.77"),
			Device: devCurl, Refused: true})
		p.AddDrift(store.DriftEvent{Time: now.Add(-10 * time.Minute), Protocol: "imap", IP: netip.MustParseAddr("198.51.100.23"),
			Device: devLaptop})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	use := store.LastUse{Time: now.Add(-10 * time.Minute), IP: netip.MustParseAddr("198.51.100.23"), Protocol: "imap", Client: "Thunderbird/128.3"}
	if err := st.TouchAppPassword(ctx, user, np.ID, use); err != nil {
		t.Fatal(err)
	}
	return np.ID
}

var reSeen = regexp.MustCompile(`name="seen" value="(\d+)"`)

// seenOf is the drift event the devices page offers to accept.
func seenOf(t *testing.T, body string) string {
	t.Helper()
	m := reSeen.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the devices page offers nothing to accept:\n%s", excerpt(body))
	}
	return m[1]
}

func (f *fixture) bound(user, id string) store.Device {
	f.t.Helper()
	for _, p := range f.appPasswords(user) {
		if p.ID == id && p.Bound != nil {
			return p.Bound.Device
		}
	}
	f.t.Fatalf("%s has no bound app password %s", user, id)
	return store.Device{}
}

// The list shows each password's device and unaccepted drift; the devices
// page lists the drift events; accepting binds the newest device, audited
// with the portal user, after which neither page reports new drift.
func TestDevicesShownAndAccepted(t *testing.T) {
	f, b, id := bobWithDevice(t)

	r := b.get("/app-passwords")
	expectStatus(t, r, http.StatusOK, "K-9 Mail", `title="TLS fingerprint: `+devPhone.TLS+`"`, fingerprint(devPhone.TLS),
		"192.0.2.0/24", "first used 2026-03-02 08:00 UTC", "2 new sign-ins from another device",
		`href="/app-passwords/`+id+`/devices"`, `<option value="default" selected>Installation default</option>`)
	if strings.Contains(r.Body, ">"+devPhone.TLS+"<") {
		t.Error("the list shows the full fingerprint instead of a shortened one")
	}

	r = b.get("/app-passwords/" + id + "/devices")
	expectStatus(t, r, http.StatusOK, "Devices of “Phone”", devPhone.TLS, "Thunderbird", devLaptop.TLS, "198.51.100.23",
		"198.51.100.0/24", devCurl.TLS, "203.0.113.77", "refused", "allowed", "Yes, that was me: accept this device",
		"If it was not you", `href="/app-passwords/`+id+`/revoke"`)
	if i, j := strings.Index(r.Body, "Thunderbird"), strings.Index(r.Body, devCurl.TLS); i < 0 || j < i {
		t.Error("the drift events are not listed newest first")
	}
	seen := seenOf(t, r.Body)

	r = b.post("/app-passwords/"+id+"/devices/accept", url.Values{"seen": {seen}})
	expectRedirect(t, r, "/app-passwords/"+id+"/devices")
	if got := f.bound(bob, id); got != devLaptop {
		t.Fatalf("bound to %+v after accepting, want the laptop", got)
	}
	r = b.get("/app-passwords/" + id + "/devices")
	expectStatus(t, r, http.StatusOK, "“Phone” now belongs to Thunderbird from 198.51.100.0/24", "nothing is waiting for you")
	if strings.Contains(r.Body, "accept this device") || strings.Contains(r.Body, `badge warn">new<`) {
		t.Error("the devices page still offers to accept after accepting")
	}
	r = b.get("/app-passwords")
	expectStatus(t, r, http.StatusOK, "Thunderbird", fingerprint(devLaptop.TLS), "198.51.100.0/24",
		"first used 2026-03-02 08:50 UTC", "Sign-ins from other devices (2)")
	if strings.Contains(r.Body, "new sign-in") {
		t.Error("the list still reports new sign-ins from another device after accepting")
	}

	recs, err := f.db.RecentAudit(context.Background(), bob, 5)
	if err != nil {
		t.Fatal(err)
	}
	if rec := recs[0]; rec.Result != account.ResultDeviceAccepted || rec.Actor != "portal:"+bob || rec.Device == nil ||
		*rec.Device != devLaptop || rec.AppPasswordID != id {
		t.Errorf("newest audit record %+v, want device-accepted by portal:%s with the laptop", rec, bob)
	}
}

// A user reaches no other user's password through its ID: not its
// devices, not accepting, not its policy.
func TestDevicesOfAnotherUser(t *testing.T) {
	f := newFixture(t, nil)
	const alice = "alice@example.org"
	f.account(alice, alicePW, false)
	f.account(bob, bobPW, false)
	id := seedDevice(t, f.db, f.setup(), alice, "Alice's phone", f.clock.Now())
	a := f.browser()
	a.signIn(alice, alicePW, "/app-passwords")
	seen := seenOf(t, a.get("/app-passwords/"+id+"/devices").Body)

	b := f.browser()
	b.signIn(bob, bobPW, "/app-passwords")
	r := b.get("/app-passwords/" + id + "/devices")
	expectRedirect(t, r, "/app-passwords")
	if strings.Contains(r.Body, "Thunderbird") || strings.Contains(r.Body, "K-9") {
		t.Error("bob's request shows alice's devices")
	}
	expectRedirect(t, b.post("/app-passwords/"+id+"/devices/accept", url.Values{"seen": {seen}}), "/app-passwords")
	expectRedirect(t, b.post("/app-passwords/"+id+"/policy", url.Values{"policy": {"off"}}), "/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "That app password no longer exists.")
	p := f.appPasswords(alice)[0]
	if p.Bound.Device != devPhone || p.DevicePolicy != "" {
		t.Errorf("bob changed alice's password: bound %+v, policy %q", p.Bound.Device, p.DevicePolicy)
	}
}

// Accepting and the policy are changes: refused from another site (the
// portal's cross-origin protection), without a session, and before the
// second factor of an MFA account; none of these changes anything.
func TestDeviceChangesNeedSessionAndSameOrigin(t *testing.T) {
	f := newFixture(t, nil)
	const carol = "carol@example.org"
	f.account(carol, "carol primary password", true)
	secret, _ := f.enrolDirect(carol)
	id := seedDevice(t, f.db, f.setup(), carol, "Phone", f.clock.Now())
	accept := url.Values{"seen": {"0"}}
	for _, p := range f.appPasswords(carol) {
		accept.Set("seen", strconv.FormatInt(p.Drift[len(p.Drift)-1].Time.UnixNano(), 10))
	}
	posts := map[string]url.Values{"/app-passwords/" + id + "/devices/accept": accept,
		"/app-passwords/" + id + "/policy": {"policy": {"off"}}}
	unchanged := func(when string) {
		t.Helper()
		p := f.appPasswords(carol)[0]
		if p.Bound.Device != devPhone || p.DevicePolicy != "" {
			t.Fatalf("%s: bound %+v, policy %q; want nothing changed", when, p.Bound.Device, p.DevicePolicy)
		}
	}

	anon := f.browser()
	for path, form := range posts {
		expectRedirect(t, anon.post(path, form), "/signin")
	}
	expectRedirect(t, anon.get("/app-passwords/"+id+"/devices"), "/signin")
	unchanged("without a session")

	b := f.browser()
	b.signIn(carol, "carol primary password", "/signin/code")
	for path, form := range posts {
		expectRedirect(t, b.post(path, form), "/signin/code")
	}
	expectRedirect(t, b.get("/app-passwords/"+id+"/devices"), "/signin/code")
	unchanged("before the second factor")

	b.enterCode(f.code(secret, 0), "/app-passwords")
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}},
		{"Origin": {"http://evil.example"}},
	} {
		b.header = h
		for path, form := range posts {
			expectStatus(t, b.post(path, form), http.StatusForbidden, "came from another web site")
		}
	}
	unchanged("after cross-origin posts")

	b.header = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {f.ts.URL}}
	expectRedirect(t, b.post("/app-passwords/"+id+"/devices/accept", accept), "/app-passwords/"+id+"/devices")
	expectRedirect(t, b.post("/app-passwords/"+id+"/policy", url.Values{"policy": {"off"}}), "/app-passwords")
	if p := f.appPasswords(carol)[0]; p.Bound.Device != devLaptop || p.DevicePolicy != store.DevicePolicyOff {
		t.Errorf("same-origin posts: bound %+v, policy %q; want the laptop, off", p.Bound.Device, p.DevicePolicy)
	}
}

// A sign-in from yet another device between the page and the click is
// not accepted in place of the one the owner saw.
func TestAcceptRefusesNewerDrift(t *testing.T) {
	f, b, id := bobWithDevice(t)
	seen := seenOf(t, b.get("/app-passwords/"+id+"/devices").Body)

	intruder := store.Device{Client: "evil", Network: netip.MustParsePrefix("233.252.0.0/24")}
	_, err := f.db.UpdateAppPassword(context.Background(), bob, id, func(p *store.AppPassword) error {
		p.AddDrift(store.DriftEvent{Time: f.clock.Now(), Protocol: "imap", Device: intruder})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, b.post("/app-passwords/"+id+"/devices/accept", url.Values{"seen": {seen}}), "/app-passwords/"+id+"/devices")
	if got := f.bound(bob, id); got != devPhone {
		t.Fatalf("bound to %+v, want the phone still", got)
	}
	expectStatus(t, b.get("/app-passwords/"+id+"/devices"), http.StatusOK,
		"was used from another device while this page was open, so nothing was accepted", "evil")
}

// The policy form sets each policy and shows it selected; anything else
// is refused.
func TestDevicePolicyForm(t *testing.T) {
	f, b, id := bobWithDevice(t)
	for _, pol := range []string{"block", "off", "notify", "default"} {
		expectRedirect(t, b.post("/app-passwords/"+id+"/policy", url.Values{"policy": {pol}}), "/app-passwords")
		want := strings.TrimPrefix(pol, "default")
		if got := f.appPasswords(bob)[0].DevicePolicy; got != want {
			t.Fatalf("policy %q stored as %q", pol, got)
		}
		expectStatus(t, b.get("/app-passwords"), http.StatusOK, `<option value="`+pol+`" selected>`, "“Phone”, when used from another device: "+policyLabel(pol))
	}
	expectStatus(t, b.post("/app-passwords/"+id+"/policy", url.Values{"policy": {"sometimes"}}), http.StatusBadRequest, "Choose one of the offered settings")
	if got := f.appPasswords(bob)[0].DevicePolicy; got != "" {
		t.Errorf("an unknown policy changed it to %q", got)
	}
}

// bob is the owner of the password the device tests seed.
const bob = "bob@example.org"

// bobWithDevice is a portal with bob signed in and one app password,
// "Phone", seeded with a bound device and drift events (seedDevice).
func bobWithDevice(t *testing.T) (f *fixture, b *browser, id string) {
	t.Helper()
	f = newFixture(t, nil)
	f.account(bob, bobPW, false)
	id = seedDevice(t, f.db, f.setup(), bob, "Phone", f.clock.Now())
	b = f.browser()
	b.signIn(bob, bobPW, "/app-passwords")
	return f, b, id
}
