package portal

import (
	"net/http"
	"net/url"
	"testing"
)

// The browser's language becomes the account's notification language at
// its first sign-in; the account page changes it; a later sign-in from a
// browser in another language does not override the owner's choice.
func TestNotificationLanguage(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.header.Set("Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8")
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	if got := f.getAccount("bob@example.org").Language; got != "fr" {
		t.Fatalf("language after a French browser's sign-in: %q, want fr", got)
	}
	expectStatus(t, b.get("/account"), http.StatusOK, `<option value="fr" selected>Français</option>`)

	expectStatus(t, b.post("/account/language", url.Values{"language": {"de"}}), http.StatusUnprocessableEntity, "Choose one of the languages")
	expectRedirect(t, b.post("/account/language", url.Values{"language": {"en"}}), "/account")
	if got := f.getAccount("bob@example.org").Language; got != "en" {
		t.Fatalf("language after choosing English: %q", got)
	}

	c := f.browser()
	c.header.Set("Accept-Language", "fr")
	c.signIn("bob@example.org", bobPW, "/app-passwords")
	if got := f.getAccount("bob@example.org").Language; got != "en" {
		t.Errorf("a French browser's sign-in replaced the owner's choice: %q", got)
	}
}
