package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testlog"
)

// This file turns issue 6's "done when" into a test: from `passgate demo`, a
// person signs in to the portal with the printed credentials, creates an app
// password and uses it with curl, then revokes it. The browser is Debian's
// chromium, headless; screenshots of each step go to
// $PASSGATE_ARTIFACTS/demo-walkthrough (default: a temp dir).

// walkStep bounds one browser or curl step so that a hang fails the test. It
// is not a performance threshold.
const walkStep = 60 * time.Second

// demoBanner is what `passgate demo` prints that a newcomer copies.
type demoBanner struct {
	text        string
	user        string
	primary     string
	portal      string // URL, ending in "/"
	totpSecret  string
	appPassword string // the seeded "Outlook" one
	listCmd     string // curl … 'imap://…/INBOX' -X 'FETCH 1:* ENVELOPE'
	sendCmd     string // printf … | curl … 'smtp://…'
}

// startDemo starts the demo binary on free loopback ports, reads its
// banner, and stops it with SIGTERM when the test ends.
func startDemo(t *testing.T, ctx context.Context) demoBanner {
	t.Helper()
	cmd := exec.CommandContext(ctx, passgateBinary(t), "demo",
		"--listen-imap", "127.0.0.1:0", "--listen-smtp", "127.0.0.1:0", "--listen-portal", "127.0.0.1:0", "--listen-metrics", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	// Stop it as Ctrl-C does, also when ctx ends first (a test's deferred
	// cancel runs before its cleanups): SIGKILL would leave the demo's
	// temporary directory behind.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = walkStep
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr.String())
		}
	})
	var text strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		text.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	// The README's first command starts without a warning or an error (a
	// newcomer reads one as "something is wrong with my machine").
	if logs := stderr.String(); strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("the demo logged a warning at start:\n%s", logs)
	}
	b := demoBanner{text: text.String()}
	field := func(what, re string) string { return b.field(t, what, re) }
	b.user = field("the user", `(?m)^\s+user:\s+(\S+)`)
	b.primary = field("the primary password", `(?m)^\s+primary password:\s+(.+?)\s{2,}\(`)
	b.portal = field("the portal URL", `(?m)^\s+(http://127\.0\.0\.1:\d+/)$`)
	b.totpSecret = field("the authenticator secret", `(?m)^\s+authenticator secret[^:]*:\s+([A-Z2-7]+)$`)
	b.listCmd = field("the curl listing command", `(?m)^\s+(curl --login-options .*ENVELOPE')$`)
	b.sendCmd = field("the SMTP command", `(?m)^\s+(printf .*smtp://.*)$`)
	b.appPassword = field("the app password in the curl command", `-u '[^':]+:([^']+)'`)
	return b
}

// field returns the first group of re in the banner, failing the test
// (naming what) if the banner lacks it.
func (b demoBanner) field(t *testing.T, what, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(b.text)
	if m == nil {
		t.Fatalf("the demo banner lacks %s:\n%s", what, b.text)
	}
	return m[1]
}

// withPassword is a printed command with the seeded app password replaced.
func (b demoBanner) withPassword(command, password string) string {
	return strings.ReplaceAll(command, "'"+b.user+":"+b.appPassword+"'", "'"+b.user+":"+password+"'")
}

// walkBrowser is one headless Chromium tab on the demo's portal.
type walkBrowser struct {
	t      *testing.T
	ctx    context.Context
	base   string // portal URL without the trailing "/"
	dir    string // screenshots
	listed []string
}

func newWalkBrowser(t *testing.T, portalURL string) *walkBrowser {
	t.Helper()
	exe := requireTool(t, "chromium")
	dir := os.Getenv("PASSGATE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "demo-walkthrough")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	actx, stopBrowser := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // CI containers run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 900),
	)...)
	ctx, closeTab := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	// Registered after t.TempDir: runs before the profile is removed.
	t.Cleanup(func() { closeTab(); stopBrowser() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &walkBrowser{t: t, ctx: ctx, base: strings.TrimSuffix(portalURL, "/"), dir: dir}
}

// run runs steps that stay on the page.
func (w *walkBrowser) run(steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, walkStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		w.t.Fatalf("browser: %v (at %s)", err, w.path())
	}
}

// load runs steps that end in a page load and checks the page: its path
// and its main heading.
func (w *walkBrowser) load(wantPath, wantH1 string, steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, walkStep)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		w.t.Fatalf("browser: %v (at %s)", err, w.path())
	}
	if resp.Status != 200 {
		w.t.Fatalf("%s answered %d: %s", w.path(), resp.Status, w.text("main"))
	}
	if got := w.path(); !regexp.MustCompile(`^` + wantPath + `$`).MatchString(got) {
		w.t.Fatalf("the browser is at %s, want %s; the page says: %s", got, wantPath, w.text("main"))
	}
	if got := w.text("main h1"); !strings.Contains(got, wantH1) {
		w.t.Fatalf("at %s the heading is %q, want %q", w.path(), got, wantH1)
	}
}

func (w *walkBrowser) click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel))
}

func (w *walkBrowser) fill(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), text)
}

func walkGet[T any](w *walkBrowser, what string, a chromedp.Action[T]) T {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, walkStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		w.t.Fatalf("browser: %s: %v (at %s)", what, err, w.path())
	}
	return v
}

// text is the visible text of the first element matching sel on the
// loaded page, "" if there is none (it does not wait for one to appear).
func (w *walkBrowser) text(sel string) string {
	w.t.Helper()
	js := fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel)
	return walkGet(w, "text of "+sel, chromedp.Evaluate[string](js))
}

func (w *walkBrowser) path() string {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(loc, w.base)
}

// shot saves a full-page screenshot as NN-name.png.
func (w *walkBrowser) shot(name, what string) {
	w.t.Helper()
	png := walkGet(w, "screenshot", chromedp.FullScreenshot(100))
	file := fmt.Sprintf("%02d-%s.png", len(w.listed)+1, name)
	if err := os.WriteFile(filepath.Join(w.dir, file), png, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.listed = append(w.listed, file+": "+what)
}

// walkCurl runs a command line with sh, as a person pastes it.
func walkCurl(t *testing.T, ctx context.Context, command string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, walkStep)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", command+" --max-time 20").CombinedOutput()
	return string(out), err
}

// TestDemoPortalWalkthrough is issue 6's acceptance: from `passgate demo`,
// sign in to the portal with the printed credentials, create an app password
// and use it with curl; then revoke it, and curl is refused.
func TestDemoPortalWalkthrough(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "chromium")
	passgateBinary(t) // build before the clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	began := time.Now()
	var laps []string
	lap := func(what string) { laps = append(laps, fmt.Sprintf("%6.1fs  %s", time.Since(began).Seconds(), what)) }
	demo := startDemo(t, ctx)
	lap("demo banner printed")
	w := newWalkBrowser(t, demo.portal)
	lap("browser started")
	defer func() {
		t.Logf("walkthrough, wall time since starting the demo:\n%s", strings.Join(laps, "\n"))
		t.Logf("screenshots in %s:\n%s", w.dir, strings.Join(w.listed, "\n"))
	}()

	// Open the printed URL: the sign-in form.
	w.load("/signin", "Sign in", chromedp.Navigate(demo.portal))
	w.shot("signin", "the printed portal URL opens the sign-in form")
	w.run(w.fill("#username", demo.user), w.fill("#password", demo.primary))
	w.shot("signin-filled", "alice and the printed primary password typed in")
	w.load("/signin/code", "Two-step verification", w.click(`form[action="/signin"] button[type=submit]`))
	w.shot("code", "the second step asks for the authenticator code")
	code, err := totp.GenerateCode(demo.totpSecret, time.Now())
	if err != nil {
		t.Fatalf("TOTP code from the printed secret: %v", err)
	}
	w.run(w.fill("#code", code))
	w.load("/app-passwords", "App passwords", w.click(`form[action="/signin/code"] button`))
	lap("signed in")

	// Open App passwords from the menu: the seeded Outlook one is listed.
	w.load("/app-passwords", "App passwords", w.click(`nav a[href="/app-passwords"]`))
	if rows := w.text("tbody"); !strings.Contains(rows, "Outlook") {
		t.Errorf("the list lacks the demo's Outlook app password: %q", rows)
	}
	w.run(w.fill("#name", "Laptop"))
	for _, scope := range []string{"imap", "smtp"} {
		sel := `input[name=scope][value=` + scope + `]`
		if !walkGet(w, scope+" checkbox", chromedp.JavascriptAttribute[bool](chromedp.CSS(sel), "checked")) {
			w.run(w.click(sel))
		}
	}
	w.shot("app-passwords", "App passwords: Outlook listed, the form filled in for Laptop, IMAP and SMTP ticked")
	w.load("/app-passwords", "Your new app password", w.click(`form[action="/app-passwords"] button[type=submit]`))
	shown := w.text("#app-password")
	copied := walkGet(w, "copy button", chromedp.AttributeValue(chromedp.CSS("button[data-copy]"), "data-copy")).Value
	if copied == "" || authn.NormalizeSecret(shown) != copied {
		t.Fatalf("the page shows %q but its Copy button copies %q", shown, copied)
	}
	if allowed := w.text("#app-password ~ p.hint"); !strings.Contains(allowed, "IMAP, SMTP") {
		t.Errorf("the new password's scopes: %q, want IMAP and SMTP", allowed)
	}
	w.shot("laptop-created", "the new Laptop password, shown once, with the mail app settings")
	lap("Laptop app password created")

	// Use it with curl, as printed but with the new password: send, list.
	if out, err := walkCurl(t, ctx, demo.withPassword(demo.sendCmd, copied)); err != nil {
		t.Fatalf("sending with the Laptop password: %v\n%s", err, out)
	}
	out, err := walkCurl(t, ctx, demo.withPassword(demo.listCmd, copied))
	if err != nil {
		t.Fatalf("listing INBOX with the Laptop password: %v\n%s", err, out)
	}
	for _, subject := range []string{"Welcome to passgate", "Your app password works", "Try IDLE and MOVE", "Hello through passgate"} {
		if !strings.Contains(out, subject) {
			t.Errorf("the INBOX listing lacks %q:\n%s", subject, out)
		}
	}
	lap("curl listed INBOX with it")

	// Back in the browser: the list shows the use; revoke Laptop.
	w.load("/app-passwords", "App passwords", w.click(`a.button[href="/app-passwords"]`))
	if rows := w.text("tbody"); !strings.Contains(rows, "Laptop") || !strings.Contains(rows, "127.0.0.1") {
		t.Errorf("the list does not show Laptop's use from 127.0.0.1: %q", rows)
	}
	w.shot("laptop-used", "the list: Laptop last used just now from 127.0.0.1")
	w.load("/app-passwords/[^/]+/revoke", "Revoke “Laptop”?", w.click(`a[aria-label="Revoke Laptop"]`))
	w.shot("revoke-confirm", "the revoke confirmation for Laptop")
	w.load("/app-passwords", "App passwords", w.click("form.actions button.danger"))
	if flash := w.text(".notice.ok"); !strings.Contains(flash, "Revoked “Laptop”") {
		t.Errorf("the message after revoking: %q", flash)
	}
	if rows := w.text("tbody"); strings.Contains(rows, "Laptop") || !strings.Contains(rows, "Outlook") {
		t.Errorf("after the revoke the list is %q, want Outlook only", rows)
	}
	w.shot("laptop-revoked", "after the revoke: the confirmation, only Outlook left")
	lap("Laptop revoked in the browser")

	out, err = walkCurl(t, ctx, demo.withPassword(demo.listCmd, copied)+" -v")
	if err == nil || !strings.Contains(out, "AUTHENTICATIONFAILED") {
		t.Fatalf("curl with the revoked Laptop password: err=%v, want a login refused with AUTHENTICATIONFAILED:\n%s", err, out)
	}
	lap("curl refused the revoked password (AUTHENTICATIONFAILED)")
}
