package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/proxy/upstream/oauth"
	"github.com/passgate/passgate/store/bolt"
)

// serve wires [portal.oidc] and [oauth] delegated into the portal: the
// sign-in page offers the provider, its button leads to the provider with
// the portal's redirect URI, the mailbox page exists; and the upstream
// login's token source reads the links the portal stores.
func TestServeWiresOIDCAndMailboxLink(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient("portal", "portal-secret")
	path := portalConfig(t, 50)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `
[portal.oidc]
issuer = %q
client_id = "portal"
client_secret = "portal-secret"
button_label = "Sign in with Test IdP"
[oauth]
mode = "delegated"
client_id = "mail"
client_secret = "mail-secret"
token_url = %q
auth_url = %q
scopes = ["https://mail.google.com/"]
`, idp.Issuer(), idp.TokenURL(), idp.AuthURL())
	f.Close()
	l := serveConfig(t, path)
	base := "http://" + l.Portal.String()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(p string) (*http.Response, string) {
		t.Helper()
		resp, err := noFollow.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if _, body := get("/signin"); !strings.Contains(body, "Sign in with Test IdP") {
		t.Errorf("no OIDC button on the sign-in page")
	}
	resp, _ := get("/signin/oidc")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), idp.AuthURL()+"?") ||
		loc.Query().Get("redirect_uri") != "http://127.0.0.1/signin/oidc/callback" || loc.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("the OIDC button leads to %d %q", resp.StatusCode, loc)
	}
	if resp, _ := get("/mailbox"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Errorf("/mailbox: %d to %q, want the sign-in (the page exists)", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The token source of the upstream login, built from the same file,
	// reads the links (a store of its own here: serve holds the file).
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "links.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src, err := cfg.OAuth.Source(mailboxLinks(cfg, &core{st: db}, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Fetch(context.Background(), "nobody@example.org"); !errors.Is(err, oauth.ErrRelinkNeeded) {
		t.Errorf("token of a user who never linked: %v, want ErrRelinkNeeded", err)
	}
}
