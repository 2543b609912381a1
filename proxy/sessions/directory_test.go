package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dirtest"
)

// TestReconcileAsksTheDirectory: with accounts from an operator's
// directory, a Reconcile ends the sessions of accounts disabled or deleted
// there (which the store cannot know), asking the directory afresh, and
// keeps every session while the directory cannot answer.
func TestReconcileAsksTheDirectory(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	dir := &dirtest.Memory{}
	now := time.Now()
	clock := func() time.Time { return now }
	w.v.Directory = &authn.Directory{Dir: dir, Kind: "test", Now: clock}
	users := []string{"alice@example.org", "bob@example.org", "carol@example.org"}
	r := &Registry{Store: w.db, Directory: w.v}
	sessions := map[string]*live{}
	for _, u := range users {
		dir.Set(directory.Entry{Username: u}, u+" directory password")
		if d := w.login(t, u, u+" directory password"); d.AppPasswordID != "" { // provisions the account
			t.Fatalf("%s: %+v", u, d)
		}
		p := w.appPassword(t, u, time.Time{})
		sessions[u] = open(t, r, w.login(t, u, p.Password))
	}

	// Down, before the cached states expire, and after: nothing ends.
	dir.SetDown(true)
	dir.Update("alice@example.org", func(e *directory.Entry) { e.Disabled = true })
	for _, wait := range []time.Duration{0, authn.DefaultDirectoryCacheTTL} {
		now = now.Add(wait)
		if n, err := r.Reconcile(ctx); n != 0 || err != nil {
			t.Fatalf("Reconcile with the directory down (%v later) = %d, %v; want 0 ended", wait, n, err)
		}
	}
	dir.SetDown(false)
	dir.Delete("bob@example.org")
	lookups := dir.Lookups()
	n, err := r.Reconcile(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want alice's and bob's sessions ended", n, err)
	}
	if got := dir.Lookups() - lookups; got != int64(len(users)) {
		t.Errorf("Reconcile made %d lookups, want one per account (%d)", got, len(users))
	}
	if !sessions["alice@example.org"].isEnded() || !sessions["bob@example.org"].isEnded() || sessions["carol@example.org"].isEnded() {
		t.Fatalf("ended: alice %v, bob %v, carol %v; want alice and bob", sessions["alice@example.org"].isEnded(),
			sessions["bob@example.org"].isEnded(), sessions["carol@example.org"].isEnded())
	}
}
