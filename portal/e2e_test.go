package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/pquerna/otp/totp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// The end-to-end tests drive the portal in a real headless Chromium
// (Debian's chromium) and log in through passgate's IMAP proxy with a real
// IMAP client. Without a browser they skip, unless CI=true: then they fail.
// Screenshots go to $PASSGATE_ARTIFACTS/portal (default: a temp dir).

// stepTimeout bounds one browser step, so that a hang fails instead of
// blocking the test run. It is not a performance threshold.
const stepTimeout = 60 * time.Second

// The desktop window of the screenshots.
const desktopWidth, desktopHeight = 1100, 900

// findChromium returns the browser to use, or skips (fails in CI).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH, and CI=true: install Debian's chromium package")
	}
	t.Skip("no chromium on PATH: skipping the browser tests (apt-get install chromium)")
	return ""
}

// artifactDir is where screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PASSGATE_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, "portal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chrome is one browser tab and the portal it talks to.
type chrome struct {
	t      *testing.T
	ctx    context.Context
	base   string // the portal's URL
	shots  string // artifact directory
	listed []string
}

func newChrome(t *testing.T, base string) *chrome {
	t.Helper()
	exe := findChromium(t)
	profile, err := os.MkdirTemp("", "passgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) }) // best effort: children may still write
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser, without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return &chrome{t: t, ctx: ctx, base: base, shots: artifactDir(t)}
}

// do runs steps within stepTimeout.
func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v (at %s)", err, c.location())
	}
}

// load runs steps that end in a page load (navigation, form submission)
// and returns the final status code.
func (c *chrome) load(steps ...chromedp.Action[chromedp.Void]) int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		c.t.Fatalf("browser: %v (at %s)", err, c.location())
	}
	return resp.Status
}

func (c *chrome) open(path string) int64 {
	c.t.Helper()
	return c.load(chromedp.Navigate(c.base + path))
}

// submit clicks a submit button and waits for the next page.
func (c *chrome) submit(sel string) int64 {
	c.t.Helper()
	return c.load(chromedp.Click(chromedp.CSS(sel)))
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("browser: text of %s: %v (at %s)", sel, err, c.location())
	}
	return s
}

func (c *chrome) location() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(loc, c.base)
}

// expectAt fails unless the tab shows path with a heading containing h1.
func (c *chrome) expectAt(path, h1 string) {
	c.t.Helper()
	if got := c.location(); got != path {
		c.t.Fatalf("browser is at %s, want %s; page: %s", got, path, c.text("main"))
	}
	if got := c.text("main h1"); !strings.Contains(got, h1) {
		c.t.Fatalf("at %s the heading is %q, want %q", path, got, h1)
	}
}

// shot saves a full-page PNG screenshot as name.
func (c *chrome) shot(name, what string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(c.shots, name), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.listed = append(c.listed, fmt.Sprintf("%s: %s", name, what))
}

func (c *chrome) typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), text)
}

// signIn fills the sign-in form and submits it.
func (c *chrome) signIn(user, pw string) {
	c.t.Helper()
	c.open("/signin")
	c.do(c.typeInto("#username", user), c.typeInto("#password", pw))
	c.submit(`form[action="/signin"] button[type=submit]`)
}

func (c *chrome) signOut() {
	c.t.Helper()
	c.submit("form.signout button")
	c.expectAt("/signin?signed-out", "Sign in")
}

// imapLogin logs in through passgate's IMAP listener and selects INBOX.
func imapLogin(t *testing.T, addr, user, pw string) (*imapclient.Client, error) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		c.Close()
		t.Fatalf("select INBOX through passgate: %v", err)
	}
	return c, nil
}

func TestBrowserEndToEnd(t *testing.T) {
	users := []string{"alice@example.org", "admin@example.org", "bob@example.org", "carol@example.org", "dave@example.org"}
	st := newMailStack(t, users)
	ctx := context.Background()
	svc := &account.Service{Store: st.db, Verifier: st.v}
	for _, u := range users {
		if err := svc.CreateUser(ctx, testActor, account.NewUser{Username: u, Password: u + " password", MFA: u == "alice@example.org"}); err != nil {
			t.Fatal(err)
		}
	}
	err := st.db.UpdateAccount(ctx, "admin@example.org", func(a *store.Account) error { a.Admin = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob@example.org", "carol@example.org", "dave@example.org"} {
		for _, name := range []string{"Outlook", "iPhone"} {
			if _, err := svc.CreateAppPassword(ctx, testActor, u, name, account.AppPasswordOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := newChrome(t, st.portal.URL)
	defer func() {
		t.Logf("screenshots in %s:\n%s", c.shots, strings.Join(c.listed, "\n"))
	}()
	const alice, alicePW = "alice@example.org", "alice@example.org password"

	// Sign in: alice must use MFA and has no authenticator yet.
	c.open("/signin")
	c.expectAt("/signin", "Sign in")
	c.shot("01-signin.png", "the sign-in form")
	c.signIn(alice, alicePW)
	c.expectAt("/mfa/setup", "Set up two-step verification")
	c.shot("02-mfa-setup.png", "required enrolment: QR code, the key in groups, the code field")
	secret := strings.Join(strings.Fields(c.text("#totp-secret")), "")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.do(c.typeInto("#code", code))
	c.submit(`form[action="/mfa/setup"] button`)
	c.expectAt("/mfa/setup", "Save your recovery codes")
	codes := strings.Fields(c.text("#recovery-codes"))
	if len(codes) != authn.RecoveryCodes {
		t.Fatalf("recovery codes on the page: %q", codes)
	}
	c.shot("03-recovery-codes.png", "the ten recovery codes, shown once, with a copy button")
	c.load(chromedp.Click(chromedp.CSS(`a[href="/app-passwords"].primary`)))
	c.expectAt("/app-passwords", "App passwords")
	c.shot("04-app-passwords-empty.png", "the app passwords page before any: empty table, create form")

	// Create an app password and read it from the page.
	c.do(c.typeInto("#name", "Thunderbird"))
	c.submit(`form[action="/app-passwords"] button[type=submit]`)
	c.expectAt("/app-passwords", "Your new app password")
	password := c.text("#app-password")
	if len(strings.Fields(password)) != 4 || len(authn.NormalizeSecret(password)) != authn.AppPasswordLen {
		t.Fatalf("app password on the page: %q", password)
	}
	c.copyButtonWorks(authn.NormalizeSecret(password))
	c.shot("05-app-password-created.png", "the new password in four groups, Copy (clicked: \"Copied.\"), client settings, .mobileconfig download")
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	c.shot("06-app-password-created-phone.png", "the same page on a 390px-wide phone screen")
	c.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))

	// Log in with it through passgate's IMAP port, with a real client.
	session, err := imapLogin(t, st.imapAddr, alice, password)
	if err != nil {
		t.Fatalf("IMAP login with the new app password: %v", err)
	}
	defer session.Close()
	if _, err := imapLogin(t, st.imapAddr, alice, alicePW); err == nil {
		t.Fatal("IMAP login with alice's primary password worked although she uses MFA")
	}
	c.open("/app-passwords")
	c.expectAt("/app-passwords", "App passwords")
	if row := c.text("tbody tr"); !strings.Contains(row, "Thunderbird") || !strings.Contains(row, "127.0.0.1") {
		t.Errorf("the list does not show the use: %q", row)
	}
	c.shot("07-app-passwords-list.png", "the list: Thunderbird, last used now from 127.0.0.1 over imap, Revoke")

	// Revoke it in the browser: the open session ends, logins fail.
	c.load(chromedp.Click(chromedp.CSS(`a[aria-label="Revoke Thunderbird"]`)))
	if loc := c.location(); !strings.HasPrefix(loc, "/app-passwords/") || !strings.HasSuffix(loc, "/revoke") {
		t.Fatalf("revoke link led to %s", loc)
	}
	if h := c.text("main h1"); h != "Revoke “Thunderbird”?" {
		t.Fatalf("revoke page heading %q", h)
	}
	c.shot("08-revoke-confirm.png", "the revoke confirmation")
	c.submit("form.actions button.danger")
	c.expectAt("/app-passwords", "App passwords")
	if flash := c.text(".notice.ok"); !strings.Contains(flash, "Revoked “Thunderbird”") {
		t.Errorf("flash after revoke: %q", flash)
	}
	c.shot("09-revoked.png", "after the revoke: confirmation message, empty list")
	select {
	case <-session.Closed():
	case <-time.After(stepTimeout):
		t.Fatal("the open IMAP session did not end after the revocation")
	}
	if _, err := imapLogin(t, st.imapAddr, alice, password); err == nil {
		t.Fatal("IMAP login with the revoked app password worked")
	}

	c.open("/account")
	c.expectAt("/account", "Account")
	if act := c.text("#recent ~ div"); !strings.Contains(act, "imap") || !strings.Contains(act, "app password revoked") {
		t.Errorf("recent activity lacks the IMAP login or the revocation: %q", act)
	}
	c.shot("10-account.png", "account: MFA on, change password, recent sign-ins and changes (imap ok, bad-secret, revoke, enrolment)")

	// Sign in again: now the code is asked.
	c.signOut()
	c.signIn(alice, alicePW)
	c.expectAt("/signin/code", "Two-step verification")
	c.shot("11-signin-code.png", "second step of sign-in: the 6-digit code (or a recovery code)")
	next, err := totp.GenerateCode(secret, time.Now().Add(totpPeriod*time.Second)) // the enrolment used this step
	if err != nil {
		t.Fatal(err)
	}
	c.do(c.typeInto("#code", next))
	c.submit(`form[action="/signin/code"] button`)
	c.expectAt("/app-passwords", "App passwords")
	c.signOut()

	// An admin deletes all app passwords of bob and carol. Without an
	// authenticator the admin pages send the admin to set one up first.
	c.signIn("admin@example.org", "admin@example.org password")
	c.expectAt("/app-passwords", "App passwords")
	c.load(chromedp.Click(chromedp.CSS(`nav a[href="/admin"]`)))
	c.expectAt("/mfa/setup", "Set up two-step verification")
	if flash := c.text(".notice.ok"); flash != msgAdminNeedsMFA {
		t.Errorf("message on the way to the admin pages: %q", flash)
	}
	c.shot("12-admin-mfa-required.png", "an admin without an authenticator opened Users: sent to set one up, with the reason")
	adminSecret := strings.Join(strings.Fields(c.text("#totp-secret")), "")
	adminCode, err := totp.GenerateCode(adminSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.do(c.typeInto("#code", adminCode))
	c.submit(`form[action="/mfa/setup"] button`)
	c.expectAt("/mfa/setup", "Save your recovery codes")
	c.open("/admin")
	c.expectAt("/admin", "Users")
	c.shot("13-admin-users.png", "admin user list: MFA state, app passwords, last sign-in, checkboxes, action menu")
	c.do(
		chromedp.Click(chromedp.CSS(`input[name="users"][value="bob@example.org"]`)),
		chromedp.Click(chromedp.CSS(`input[name="users"][value="carol@example.org"]`)),
		chromedp.SetValue(chromedp.CSS("#action"), "delete-app-passwords"),
	)
	c.submit("#bulk button.primary")
	c.expectAt("/admin/actions", "Delete all app passwords?")
	if sel := c.text(".userlist"); !strings.Contains(sel, "bob@example.org") || !strings.Contains(sel, "carol@example.org") || strings.Contains(sel, "dave") {
		t.Fatalf("confirmation lists %q", sel)
	}
	c.shot("14-admin-confirm.png", "confirmation of the bulk delete for the two selected users")
	c.submit("form.actions button.danger")
	c.expectAt("/admin", "Users")
	if flash := c.text(".notice.ok"); flash != "Deleted 4 app passwords of 2 users." {
		t.Errorf("flash %q", flash)
	}
	c.shot("15-admin-done.png", "user list after the bulk delete: bob and carol have 0 app passwords, dave 2")
	for u, want := range map[string]int{"bob@example.org": 0, "carol@example.org": 0, "dave@example.org": 2} {
		l, err := st.db.ListAppPasswords(ctx, u)
		if err != nil || len(l) != want {
			t.Errorf("%s: %d app passwords (%v), want %d", u, len(l), err, want)
		}
	}
	c.open("/admin/users/carol@example.org")
	c.expectAt("/admin/users/carol@example.org", "carol@example.org")
	if act := c.text("#recent ~ div"); !strings.Contains(act, "all app passwords deleted") || !strings.Contains(act, "admin@example.org") {
		t.Errorf("carol's activity lacks the audited admin action: %q", act)
	}
	c.shot("16-admin-user.png", "one user's page: state, action menu, app passwords, activity with the admin's action")

	// Another origin on the same host posts to the portal: refused, even
	// though the admin's SameSite=Lax cookie goes along (same site).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id="f" method="post" action="%s/app-passwords"><input name="name" value="Evil"><input name="scope" value="imap"></form>
<script>document.getElementById("f").submit()</script>`, st.portal.URL)
	}))
	defer evil.Close()
	c.do(chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS("main h1")))
	c.expectAt("/app-passwords", "Request refused")
	if status := c.status(); status != http.StatusForbidden {
		t.Errorf("cross-origin POST answered %d, want 403", status)
	}
	c.shot("17-cross-origin-refused.png", "a form on another origin posted to the portal: refused with 403")
	if l, _ := st.db.ListAppPasswords(ctx, "admin@example.org"); len(l) != 0 {
		t.Errorf("the cross-origin POST created %d app passwords", len(l))
	}
	if log := st.log.String(); strings.Contains(log, authn.NormalizeSecret(password)) || strings.Contains(log, password) || strings.Contains(log, secret) || strings.Contains(log, adminSecret) {
		t.Error("a secret appears in the log")
	}
}

// copyButtonWorks clicks the page's first copy button and checks the
// clipboard (the script runs under the strict CSP).
func (c *chrome) copyButtonWorks(want string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	for _, p := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: p, AllowWithoutSanitization: true},
			Setting:    cdpbrowser.PermissionSettingGranted, Origin: c.base})
		if err != nil {
			c.t.Fatalf("grant %s: %v", p, err)
		}
	}
	c.do(chromedp.Click(chromedp.CSS("button[data-copy]")))
	status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Promise(done => {
		const s = document.querySelector(".copied");
		const check = () => s.textContent ? done(s.textContent) : setTimeout(check, 20);
		check();
	})`, chromedp.EvalAwaitPromise))
	if err != nil || status != "Copied." {
		c.t.Fatalf("copy button status %q, %v", status, err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Logf("clipboard not readable here (%v); the button reported success", err)
		return
	}
	if got != want {
		c.t.Errorf("clipboard holds %q, want the password", got)
	}
}

// status is the HTTP status of the page the tab shows.
func (c *chrome) status() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
	if err != nil {
		c.t.Fatalf("status: %v", err)
	}
	return n
}
