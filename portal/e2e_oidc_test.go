package portal

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// TestBrowserOIDCAndMailboxLink clicks through the OIDC sign-in and the
// mailbox link in Chromium, against the test IdP (which consents at once):
// the first sign-in creates the account, the link stores a refresh token
// the upstream login refreshes with, and after the provider revoked it
// the page asks to link again, which works.
func TestBrowserOIDCAndMailboxLink(t *testing.T) {
	f := newIDPFixture(t, func(c *OIDCConfig) { c.ButtonLabel = "Sign in with Example IdP" })
	f.idp.AddUser(carol)
	f.idp.SignIn(carol)
	c := newChrome(t, f.ts.URL)
	defer func() { t.Logf("screenshots in %s:\n%s", c.shots, strings.Join(c.listed, "\n")) }()

	c.open("/signin")
	c.expectAt("/signin", "Sign in")
	if label := c.text("#signin-oidc"); label != "Sign in with Example IdP" {
		t.Fatalf("OIDC button %q", label)
	}
	c.shot("oidc-01-signin.png", "the sign-in page with the identity provider's button above the password form")
	c.load(chromedp.Click(chromedp.CSS("#signin-oidc")))
	c.expectAt("/app-passwords", "App passwords")
	if who := c.text(".who"); who != carol {
		t.Errorf("signed in as %q", who)
	}
	c.shot("oidc-02-signed-in.png", "after the provider's sign-in: carol's account was created, app passwords page, Mailbox in the navigation")
	if a := f.getAccount(carol); a.PasswordHash != "" {
		t.Error("the provisioned account has a primary password")
	}

	c.load(chromedp.Click(chromedp.CSS(`nav a[href="/mailbox"]`)))
	c.expectAt("/mailbox", "Mailbox")
	if state := c.text("#link-state"); !strings.Contains(state, "not linked") {
		t.Errorf("mailbox state before the link: %q", state)
	}
	c.shot("oidc-03-mailbox-not-linked.png", "the mailbox page before the link: why, and the Link button")
	c.load(chromedp.Click(chromedp.CSS("#link-button")))
	c.expectAt("/mailbox", "Mailbox")
	if flash := c.text(".notice.ok"); !strings.Contains(flash, "Your mailbox is linked") {
		t.Errorf("flash after the link: %q", flash)
	}
	c.shot("oidc-04-mailbox-linked.png", "after the provider's consent: linked, with the date")

	d := &oauth.Delegated{Config: linkConfig(f.idp), Store: f.links()}
	if _, err := d.Fetch(context.Background(), carol); err != nil {
		t.Fatalf("the upstream login's refresh with the linked token: %v", err)
	}
	f.idp.RevokeUser(carol)
	if _, err := d.Fetch(context.Background(), carol); !errors.Is(err, oauth.ErrRelinkNeeded) {
		t.Fatalf("refresh after the revocation: %v", err)
	}
	c.open("/mailbox")
	if state := c.text("#link-state"); !strings.Contains(state, "link again") {
		t.Errorf("mailbox state after the revocation: %q", state)
	}
	c.shot("oidc-05-mailbox-link-again.png", "the provider revoked the token: the page asks to link again")
	c.load(chromedp.Click(chromedp.CSS("#link-button")))
	c.expectAt("/mailbox", "Mailbox")
	if state := c.text("#link-state"); !strings.Contains(state, "linked") || strings.Contains(state, "link again") {
		t.Errorf("mailbox state after linking again: %q", state)
	}
	if _, err := d.Fetch(context.Background(), carol); err != nil {
		t.Errorf("refresh after linking again: %v", err)
	}
	c.signOut()
	if log := f.log.String(); strings.Contains(log, oidcSecret) || strings.Contains(log, linkSecret) || strings.Contains(log, "rt-") {
		t.Error("a secret or refresh token is in the log")
	}
}
