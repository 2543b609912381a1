package oauth

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The link flow's request asks Google for a refresh token (offline access,
// consent again), and Microsoft for nothing beyond its scopes.
func TestLinkOptions(t *testing.T) {
	for _, tc := range []struct {
		provider string
		want     url.Values // parameters the authorization URL must carry
		absent   []string
	}{
		{ProviderGoogle, url.Values{"access_type": {"offline"}, "prompt": {"consent"},
			"scope": {"https://mail.google.com/"}}, nil},
		{ProviderMicrosoft, url.Values{"scope": {strings.Join(MicrosoftUserScopes, " ")}}, []string{"access_type", "prompt"}},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			s := Settings{Mode: ModeDelegated, Provider: tc.provider, Tenant: "contoso", ClientID: "app", ClientSecret: "s"}
			cfg, err := s.DelegatedConfig()
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(cfg.AuthCodeURL("state", s.LinkOptions()...))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			for k, v := range tc.want {
				if !slices.Equal(q[k], v) {
					t.Errorf("%s = %q, want %q (URL %s)", k, q[k], v, u)
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s sent: %s", k, u)
				}
			}
		})
	}
	if _, err := (Settings{Mode: ModeClientCredentials}).DelegatedConfig(); err == nil || !strings.HasPrefix(err.Error(), "oauth.mode:") {
		t.Errorf("DelegatedConfig of another mode: %v", err)
	}
}

// Check finds what Source finds, in every mode, without a store.
func TestCheck(t *testing.T) {
	good := Settings{Mode: ModeDelegated, Provider: ProviderGoogle, ClientID: "app", ClientSecret: "s"}
	if err := good.Check(); err != nil {
		t.Errorf("valid delegated settings: %v", err)
	}
	bad := good
	bad.ClientID = ""
	if err := bad.Check(); err == nil || !strings.HasPrefix(err.Error(), "oauth.client_id:") {
		t.Errorf("no client id: %v", err)
	}
	if err := (Settings{Mode: ModeServiceAccount, Provider: ProviderGoogle}).Check(); err == nil ||
		!strings.HasPrefix(err.Error(), "oauth.service_account_file:") {
		t.Errorf("no service account: %v", err)
	}
}

// A user who links again while a rotated token waits in memory (the store
// failed to save it) gets the new link at the next login: the waiting
// token is stale, and after the user revoked the old grant at the provider
// it would fail that login with ErrRelinkNeeded.
func TestDelegatedPrefersANewLinkToAPendingRotation(t *testing.T) {
	idp, store, d := delegated(t)
	store.failSaves = 1
	if _, err := d.Fetch(t.Context(), alice); err != nil { // rotated; the save fails
		t.Fatal(err)
	}
	idp.RevokeUser(alice) // the user removed the old grant...
	relinked := idp.Link("web", alice, "https://mail.google.com/")
	store.mu.Lock()
	store.tokens[alice] = relinked // ...and linked the mailbox again
	store.mu.Unlock()
	if _, err := d.Fetch(t.Context(), alice); err != nil {
		t.Fatalf("first login after the new link: %v", err)
	}
	if got := store.get(alice); got == "" || got == relinked {
		t.Errorf("the new link's rotated token was not saved: store holds %q", got)
	}
}
