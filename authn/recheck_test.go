package authn

import (
	"context"
	"errors"
	"testing"

	"github.com/passgate/passgate/store"
)

// A cached login must not outlive a change whose event never reached the
// cache (a missed Redis message): every hit is checked against the store.
func TestCacheHitRechecksStoreWithoutEvents(t *testing.T) {
	ctx := context.Background()
	t.Run("revoked app password", func(t *testing.T) {
		f := newCacheFixture(t)
		pw := f.pw["alice/laptop"]
		if d, _ := f.verify(t, attempt(alice, pw.Password)); d.Result != OK {
			t.Fatalf("first login: %v", d.Result)
		}
		if err := f.st.RevokeAppPassword(ctx, alice, pw.ID); err != nil { // no Drop
			t.Fatal(err)
		}
		if d, _ := f.verify(t, attempt(alice, pw.Password)); d.Result == OK {
			t.Fatal("a revoked app password was accepted from the cache")
		}
	})
	t.Run("disabled account", func(t *testing.T) {
		f := newCacheFixture(t)
		pw := f.pw["alice/laptop"]
		f.verify(t, attempt(alice, pw.Password))
		f.st.set(func(m *memStore) { a := m.accounts[alice]; a.Disabled = true; m.accounts[alice] = a })
		if d, _ := f.verify(t, attempt(alice, pw.Password)); d.Result == OK {
			t.Fatal("a disabled account was accepted from the cache")
		}
	})
	t.Run("primary password changed or MFA on", func(t *testing.T) {
		newHash, err := cheap.Hash([]byte("Another Primary 9"))
		if err != nil {
			t.Fatal(err)
		}
		for _, change := range []func(*store.Account){
			func(a *store.Account) { a.PasswordHash = newHash },
			func(a *store.Account) { a.MFA = true },
		} {
			f := newCacheFixture(t)
			if d, n := f.verify(t, attempt(alice, "Alice Primary 1")); d.Result != OK || n != 1 {
				t.Fatalf("primary login: %v", d.Result)
			}
			if d, n := f.verify(t, attempt(alice, "Alice Primary 1")); d.Result != OK || n != 0 {
				t.Fatalf("second primary login: %v after %d hashes, want a cache hit", d.Result, n)
			}
			f.st.set(func(m *memStore) { a := m.accounts[alice]; change(&a); m.accounts[alice] = a })
			if d, _ := f.verify(t, attempt(alice, "Alice Primary 1")); d.Result == OK {
				t.Fatal("a primary login was accepted from the cache after the account changed")
			}
		}
	})
	t.Run("store down", func(t *testing.T) {
		f := newCacheFixture(t)
		pw := f.pw["alice/laptop"]
		f.verify(t, attempt(alice, pw.Password))
		f.st.set(func(m *memStore) { m.failGet = errors.New("redis: connection refused") })
		if _, err := f.g.Verify(ctx, attempt(alice, pw.Password)); err == nil {
			t.Fatal("a cache hit with the store down answered without error")
		}
	})
}
