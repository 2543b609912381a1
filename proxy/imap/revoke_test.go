package imap

import (
	"context"
	"path/filepath"
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// gatedUpstream holds each upstream login until the test releases it: a
// slow upstream.
type gatedUpstream struct {
	*lt.Upstream
	entered chan struct{} // closed when the first login arrives
	release chan struct{} // close to let it go on
}

func (g *gatedUpstream) Login(ctx context.Context, l upstream.Login) (*upstream.Conn, error) {
	close(g.entered)
	<-g.release
	return g.Upstream.Login(ctx, l)
}

// eventSeen reports each event the registry handled.
type eventSeen chan store.Event

func (c eventSeen) Drop(ev store.Event) { c <- ev }
func (c eventSeen) Clear()              {}

// sessionStore is a bolt store holding fakeAuth's app password appID of
// appUser, followed by a registry.
func sessionStore(t *testing.T) (*bolt.DB, *sessions.Registry, eventSeen) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if err := db.CreateAccount(ctx, store.Account{Username: appUser}); err != nil {
		t.Fatal(err)
	}
	p := store.AppPassword{ID: appID, Username: appUser, Tag: []byte("tag"), Scopes: store.AllScopes}
	if err := db.CreateAppPassword(ctx, p); err != nil {
		t.Fatal(err)
	}
	seen := make(eventSeen, 1)
	reg := &sessions.Registry{Store: db, Cache: seen}
	done, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); <-done })
	return db, reg, seen
}

// TestRevokedDuringUpstreamLogin (issue 9 item 10): the app password is
// revoked, and its event handled, while passgate logs in upstream. The
// login must be refused; before the fix the session registered after the
// event and lived on.
func TestRevokedDuringUpstreamLogin(t *testing.T) {
	db, reg, seen := sessionStore(t)
	g := &gatedUpstream{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, cleartext, func(s *Server) {
		// Before Serve starts: it asks the upstream for its capabilities.
		g.Upstream = s.Upstream.(*lt.Upstream)
		s.Sessions, s.Upstream = reg, g
	})

	c := e.greeted()
	c.send("a LOGIN alice@example.org " + appSecret + "\r\n")
	<-g.entered
	if err := db.RevokeAppPassword(t.Context(), appUser, appID); err != nil {
		t.Fatal(err)
	}
	<-seen // the registry handled the revocation: no session to end yet
	close(g.release)

	peer := e.peer(t)
	c.expect("a NO [AUTHENTICATIONFAILED] Invalid credentials")
	peer.expectClosed()
	if n := len(reg.Sessions()); n != 0 {
		t.Errorf("%d sessions registered, want none", n)
	}
}
