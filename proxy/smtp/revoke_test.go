package smtp

import (
	"path/filepath"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// eventSeen reports each event the registry handled.
type eventSeen chan store.Event

func (c eventSeen) Drop(ev store.Event) { c <- ev }
func (c eventSeen) Clear()              {}

// TestRevokedDuringUpstreamLogin (issue 9 item 10): the app password is
// revoked, and its event handled, while passgate logs in upstream. AUTH
// must fail; before the fix the session registered after the event and
// lived on (MAIL FROM went upstream).
func TestRevokedDuringUpstreamLogin(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
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

	entered, release := make(chan struct{}), make(chan struct{})
	upstreamDone := make(chan string, 1)
	addr := scriptedUpstream(t, func(s *upScript) {
		if !s.greet() || s.line() == "" { // AUTH
			return
		}
		close(entered)
		<-release
		s.send("235 2.7.0 Authentication successful")
		upstreamDone <- s.line() // what passgate sends next, "" when it closes
	})
	e := newEnv(t, nil, func(s *Server) { s.Sessions = reg; upstreamOf(s).Address = addr })
	c := dial(t, e.addr)
	authErr := make(chan error, 1)
	go func() { authErr <- c.Auth(sasl.NewPlainClient("", appUser, appSecret)) }()
	<-entered
	if err := db.RevokeAppPassword(ctx, appUser, appID); err != nil {
		t.Fatal(err)
	}
	<-seen // the registry handled the revocation: no session to end yet
	close(release)

	wantReply(t, <-authErr, 535, gosmtp.EnhancedCode{5, 7, 8}, "")
	if line := <-upstreamDone; line != "" {
		t.Errorf("passgate sent %q upstream after the refused AUTH, want the connection closed", line)
	}
	if n := len(reg.Sessions()); n != 0 {
		t.Errorf("%d sessions registered, want none", n)
	}
}
