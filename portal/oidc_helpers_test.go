package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/passgate/passgate/internal/testidp"
	"github.com/passgate/passgate/store"
)

// The OIDC sign-in and the mailbox link run against internal/testidp on
// 127.0.0.1, which signs real ID tokens and consents at once.

const (
	oidcClient  = "portal-client"
	oidcSecret  = "portal client secret"
	linkClient  = "mail-client"
	linkSecret  = "mail client secret"
	googleMail  = "https://mail.google.com/"
	linkService = "Test Mail"
)

// idpFixture is a portal whose OIDC sign-in and mailbox link use one test
// IdP, on the fixture's clock.
type idpFixture struct {
	*fixture
	idp *testidp.IdP
}

// newIDPFixture starts an IdP and a portal offering both flows;
// configure, if not nil, adjusts the OIDC settings.
func newIDPFixture(t *testing.T, configure func(*OIDCConfig)) *idpFixture {
	t.Helper()
	idp := testidp.Start(t)
	idp.AddClient(oidcClient, oidcSecret)
	idp.AddClient(linkClient, linkSecret)
	f := newFixture(t, func(s *Server) {
		s.OIDC = &OIDCConfig{Issuer: idp.Issuer(), ClientID: oidcClient, ClientSecret: oidcSecret}
		if configure != nil {
			configure(s.OIDC)
		}
		s.Link = &LinkConfig{OAuth2: linkConfig(idp), CheckIdentity: true, Provider: linkService}
	})
	idp.SetNow(f.clock.Now)
	return &idpFixture{fixture: f, idp: idp}
}

// linkConfig is the delegated client as oauth.Settings.DelegatedConfig
// builds it.
func linkConfig(idp *testidp.IdP) *oauth2.Config {
	return &oauth2.Config{ClientID: linkClient, ClientSecret: linkSecret, Scopes: []string{googleMail},
		Endpoint: oauth2.Endpoint{AuthURL: idp.AuthURL(), TokenURL: idp.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
}

// links is the refresh token store the upstream login would use.
func (f *idpFixture) links() *MailboxLinks {
	return &MailboxLinks{Store: f.db, Key: testKey, Now: f.clock.Now, Logger: f.srv.Logger}
}

// noFollow is an HTTP client that shows redirects instead of following.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// throughIdP starts a flow at start (GET), lets tamper change the
// authorization request, has the IdP consent, and returns the callback
// URL the IdP sends the browser back to (not yet followed).
func (b *browser) throughIdP(start string, tamper func(q url.Values)) *url.URL {
	b.t.Helper()
	r := b.get(start)
	if r.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("GET %s: %d, want 303 to the IdP; body:\n%s", start, r.StatusCode, excerpt(r.Body))
	}
	authz, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	if tamper != nil {
		q := authz.Query()
		tamper(q)
		authz.RawQuery = q.Encode()
	}
	resp, err := noFollow.Get(authz.String())
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(cb.String(), b.base+"/") {
		b.t.Fatalf("IdP answered %s to %q (%v)", resp.Status, resp.Header.Get("Location"), err)
	}
	return cb
}

// callback follows the IdP's redirect back to the portal.
func (b *browser) callback(cb *url.URL) reply {
	b.t.Helper()
	return b.get(cb.RequestURI())
}

// oidcSignIn runs the whole OIDC sign-in and expects it to end on want.
func (b *browser) oidcSignIn(want string) {
	b.t.Helper()
	expectRedirect(b.t, b.callback(b.throughIdP("/signin/oidc", nil)), want)
}

// records returns user's audit records, oldest first.
func (f *fixture) records(user string) []store.AuditRecord {
	f.t.Helper()
	recs, err := f.db.RecentAudit(context.Background(), user, store.AuditMax)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// hasRecord reports whether recs hold one with result, mechanism and
// actor ("" matches any).
func hasRecord(recs []store.AuditRecord, result, mech, actor string) bool {
	for _, r := range recs {
		if r.Result == result && (mech == "" || r.Mechanism == mech) && (actor == "" || r.Actor == actor) {
			return true
		}
	}
	return false
}
