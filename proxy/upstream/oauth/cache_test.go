package oauth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testidp"
)

// gate holds token requests until opened, counting those that arrive.
type gate struct {
	open    chan struct{}
	arrived atomic.Int32
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	g.arrived.Add(1)
	select {
	case <-g.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// serviceAccountCache is a Cache over a service account at a test IdP
// that knows alice and bob.
func serviceAccountCache(t *testing.T, hc *http.Client) (*testidp.IdP, *Cache) {
	idp := testidp.Start(t)
	idp.AddUser(alice, bob)
	sa, err := NewServiceAccount(idp.NewServiceAccount(t, "pg@test.iam.example", "1001"), GoogleMailScopes...)
	if err != nil {
		t.Fatal(err)
	}
	sa.HTTPClient = hc
	return idp, &Cache{Source: sa}
}

func TestConcurrentLoginsOfOneUserCauseOneTokenRequest(t *testing.T) {
	g := newGate()
	idp, cache := serviceAccountCache(t, &http.Client{Transport: g})
	const logins = 50
	tokens := make([]string, logins)
	errs := make([]error, logins)
	var started, done sync.WaitGroup
	started.Add(logins)
	done.Add(logins)
	for i := range logins {
		go func() {
			defer done.Done()
			started.Done()
			tokens[i], errs[i] = cache.Token(t.Context(), alice)
		}()
	}
	started.Wait()
	// Hold the first request while the other logins pile up behind it:
	// without single flight each would send its own within microseconds.
	for range 20 {
		if g.arrived.Load() > 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(g.open)
	done.Wait()
	for i := range logins {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("login %d: %q, %v; want the same token as login 0", i, tokens[i][:min(10, len(tokens[i]))], errs[i])
		}
	}
	if n := idp.TokenRequests(""); n != 1 {
		t.Errorf("%d concurrent logins caused %d token requests, want 1", logins, n)
	}
	if n := g.arrived.Load(); n != 1 {
		t.Errorf("%d requests reached the transport, want 1", n)
	}
}

func TestCacheReusesATokenUntilShortlyBeforeItExpires(t *testing.T) {
	idp, cache := serviceAccountCache(t, nil)
	idp.SetAccessTTL(10 * time.Minute)
	now := time.Now()
	cache.Now = func() time.Time { return now }
	cache.Early = time.Minute

	first, err := cache.Token(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(8 * time.Minute)
	if tok, _ := cache.Token(t.Context(), alice); tok != first || idp.TokenRequests("") != 1 {
		t.Fatalf("at 8 of 10 minutes: new token or request (%d requests)", idp.TokenRequests(""))
	}
	if tok, _ := cache.Token(t.Context(), bob); tok == first {
		t.Fatal("bob got alice's token")
	}
	now = now.Add(time.Minute + time.Second) // less than Early before expiry
	if tok, _ := cache.Token(t.Context(), alice); tok == first {
		t.Error("a token about to expire was handed out")
	}
	if n := idp.TokenRequests(""); n != 3 {
		t.Errorf("%d token requests, want 3 (alice, bob, alice again)", n)
	}
}

func TestCacheKeepsAShortLivedTokenForHalfItsLife(t *testing.T) {
	idp, cache := serviceAccountCache(t, nil)
	idp.SetAccessTTL(30 * time.Second) // shorter than Early
	now := time.Now()
	cache.Now = func() time.Time { return now }
	first, _ := cache.Token(t.Context(), alice)
	now = now.Add(10 * time.Second)
	if tok, _ := cache.Token(t.Context(), alice); tok != first {
		t.Error("a 30 s token was fetched again after 10 s")
	}
	now = now.Add(10 * time.Second)
	if tok, _ := cache.Token(t.Context(), alice); tok == first {
		t.Error("a 30 s token was still handed out after 20 s")
	}
}

// Many logins refused with the same stale token, at the same moment or one
// after the other: one new fetch, not one each.
func TestInvalidateRefreshesOnceForAllLoginsRefusedWithTheSameToken(t *testing.T) {
	idp, cache := serviceAccountCache(t, nil)
	stale, err := cache.Token(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	const logins = 50
	fresh := make([]string, logins)
	retry := func(i int) {
		cache.Invalidate(alice, stale) // the server said: invalid token
		fresh[i], _ = cache.Token(t.Context(), alice)
	}
	var wg sync.WaitGroup
	for i := range logins / 2 {
		wg.Go(func() { retry(i) })
	}
	wg.Wait()
	for i := logins / 2; i < logins; i++ {
		retry(i)
	}
	for i := range logins {
		if fresh[i] == stale || fresh[i] != fresh[0] {
			t.Fatalf("login %d retried with the stale token or another new one", i)
		}
	}
	if n := idp.TokenRequests(""); n != 2 {
		t.Errorf("%d token requests, want 2 (the first and one refresh)", n)
	}
}

func TestSharedSourceKeepsOneTokenForAllUsers(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddClient("app", "s")
	cache := &Cache{Source: &ClientCredentials{TokenURL: idp.TokenURL(), ClientID: "app", ClientSecret: "s"}}
	a, err := cache.Token(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := cache.Token(t.Context(), bob); b != a || idp.TokenRequests("") != 1 {
		t.Errorf("app-only token fetched per user (%d requests)", idp.TokenRequests(""))
	}
	cache.Invalidate(bob, a)
	if c, _ := cache.Token(t.Context(), alice); c == a {
		t.Error("the shared token survived its invalidation")
	}
}

func TestOneLoginGivingUpDoesNotFailTheOthers(t *testing.T) {
	g := newGate()
	_, cache := serviceAccountCache(t, &http.Client{Transport: g})
	impatient, cancel := context.WithCancel(t.Context())
	first := make(chan error)
	go func() { _, err := cache.Token(impatient, alice); first <- err }()
	for i := 0; g.arrived.Load() == 0; i++ {
		if i == 10000 {
			t.Fatal("the first login's request never reached the provider")
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan error)
	go func() { _, err := cache.Token(t.Context(), alice); second <- err }()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled login: %v, want context.Canceled", err)
	}
	close(g.open)
	if err := <-second; err != nil {
		t.Errorf("the patient login failed with the impatient one: %v", err)
	}
}

func TestCacheReturnsTheSourcesError(t *testing.T) {
	idp, cache := serviceAccountCache(t, nil)
	idp.Fail(http.StatusServiceUnavailable, "")
	if _, err := cache.Token(t.Context(), alice); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("provider down: %v, want ErrUnavailable", err)
	}
	idp.Fail(0, "")
	if _, err := cache.Token(t.Context(), alice); err != nil {
		t.Fatalf("a failure was cached: %v", err)
	}
}
