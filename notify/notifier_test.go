package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// accounts is an Accounts of fixed accounts.
type accounts map[string]store.Account

func (a accounts) GetAccount(_ context.Context, name string) (store.Account, error) {
	acct, ok := a[name]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return acct, nil
}

// counted is a Metrics that keeps its counts.
type counted struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counted) Notified(event, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[event+" "+outcome]++
}

func (c *counted) get(event, outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[event+" "+outcome]
}

// receiver is an operator's webhook endpoint that checks signatures with
// its own HMAC and keeps what it accepted.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []Payload
	ids    []string
	fail   int // answer 503 to this many requests first
	status int // then this status (0: 204)
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, rv.secret)
	mac.Write([]byte(r.Header.Get("X-Passgate-Timestamp") + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get("X-Passgate-Signature")), []byte(want)) {
		rv.t.Errorf("bad signature %q", r.Header.Get("X-Passgate-Signature"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.ids = append(rv.ids, r.Header.Get("X-Passgate-Delivery"))
	if rv.fail > 0 {
		rv.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if rv.status != 0 {
		w.WriteHeader(rv.status)
		return
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rv.t.Errorf("payload: %v", err)
	}
	rv.got = append(rv.got, p)
	w.WriteHeader(http.StatusNoContent)
}

func (rv *receiver) payloads() []Payload {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]Payload(nil), rv.got...)
}

// fixture is a Notifier whose only channel is a webhook to a receiver.
type fixture struct {
	n      *Notifier
	rv     *receiver
	m      *counted
	sleeps []time.Duration
}

func newFixture(t *testing.T, counters store.Counters) *fixture {
	f := &fixture{rv: &receiver{t: t, secret: []byte("s3cret")}, m: &counted{}}
	srv := httptest.NewServer(f.rv)
	t.Cleanup(srv.Close)
	f.n = &Notifier{
		Accounts: accounts{"alice@example.org": {Username: "alice@example.org"},
			"bob@example.org": {Username: "bob@example.org", Language: "fr"}},
		Webhook: &Webhook{URL: srv.URL, Secret: f.rv.secret, Now: func() time.Time { return t0 },
			Sleep: func(_ context.Context, d time.Duration) error { f.sleeps = append(f.sleeps, d); return nil }},
		Counters: counters, Metrics: f.m, Logger: slog.New(slog.DiscardHandler),
	}
	return f
}

// An account gets at most MaxPerHour notifications an hour, counted in
// the shared counters: two instances together send no more; the rest is
// counted as rate-limited.
func TestRateLimitPerAccount(t *testing.T) {
	ctx := context.Background()
	counters := &memcount.Counters{}
	a, b := newFixture(t, counters), newFixture(t, counters)
	for i := range 15 {
		f := a
		if i%2 == 1 {
			f = b
		}
		rec := record(account.ResultAppPasswordCreated)
		rec.AppPasswordID = strconv.Itoa(i)
		f.n.handle(ctx, rec)
	}
	sent := len(a.rv.payloads()) + len(b.rv.payloads())
	limited := a.m.get(account.ResultAppPasswordCreated, OutcomeRateLimited) + b.m.get(account.ResultAppPasswordCreated, OutcomeRateLimited)
	if sent != DefaultMaxPerHour || limited != 15-DefaultMaxPerHour {
		t.Errorf("sent %d, rate-limited %d; want %d and %d", sent, limited, DefaultMaxPerHour, 15-DefaultMaxPerHour)
	}
	// Bob's budget is his own.
	a.n.handle(ctx, record(account.ResultAppPasswordRetired))
	bobs := record(account.ResultAppPasswordRetired)
	bobs.Username = "bob@example.org"
	a.n.handle(ctx, bobs)
	if got := a.rv.payloads(); got[len(got)-1].Username != "bob@example.org" {
		t.Errorf("bob's notification was limited by alice's")
	}
}

// A flood of device events (anyone holding a stolen password can log in
// from ever new devices) uses up the device events' budget only: the
// owner is still told of an account change made right after, such as a
// new app password or all of them revoked.
func TestDeviceFloodKeepsAccountChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &memcount.Counters{})
	for i := range DefaultMaxPerHour + 5 {
		rec := record(ResultDeviceDrift)
		rec.Device.Network = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i), 0}), 24)
		f.n.handle(ctx, rec)
	}
	if got := f.m.get(ResultDeviceDrift, OutcomeRateLimited); got != 5 {
		t.Fatalf("%d drift notifications rate-limited, want 5", got)
	}
	for _, ev := range []string{account.ResultAppPasswordCreated, account.ResultAppPasswordsDeleted, account.ResultMFAReset} {
		rec := record(ev)
		rec.Protocol = account.ProtocolAdmin
		f.n.handle(ctx, rec)
		if got := f.m.get(ev, OutcomeRateLimited); got != 0 {
			t.Errorf("%s was rate-limited after a flood of drift", ev)
		}
	}
	if got := len(f.rv.payloads()); got != DefaultMaxPerHour+3 {
		t.Errorf("%d notifications, want %d drift and the 3 account changes", got, DefaultMaxPerHour)
	}
}

// Repeated drift or refusals of one password from one device are told
// once an hour; another device, or the other event, is told again.
func TestCollapseRepeats(t *testing.T) {
	ctx := context.Background()
	clock := t0
	counters := &memcount.Counters{}
	counters.Now = func() time.Time { return clock }
	f := newFixture(t, counters)
	f.n.MaxPerHour = -1
	for range 3 {
		f.n.handle(ctx, record(ResultDeviceDrift))
	}
	other := record(ResultDeviceDrift)
	other.Device.Network = netip.MustParsePrefix("198.51.100.0/24")
	f.n.handle(ctx, other)
	f.n.handle(ctx, record(ResultDeviceRefused))
	f.n.handle(ctx, record(ResultDeviceRefused))
	if got := len(f.rv.payloads()); got != 3 {
		t.Errorf("%d notifications, want 3 (drift, drift from another network, refused)", got)
	}
	if c := f.m.get(ResultDeviceDrift, OutcomeCollapsed) + f.m.get(ResultDeviceRefused, OutcomeCollapsed); c != 3 {
		t.Errorf("%d collapsed, want 3", c)
	}
	clock = clock.Add(CollapseWindow + time.Second)
	f.n.handle(ctx, record(ResultDeviceDrift))
	if got := len(f.rv.payloads()); got != 4 {
		t.Errorf("an hour later: %d notifications, want 4", got)
	}
}

// Notify never blocks a login: with the queue full, records are dropped
// and counted; records that do not notify never take a place.
func TestQueueFullDrops(t *testing.T) {
	f := newFixture(t, nil)
	f.n.QueueSize = 2
	for range 100 {
		f.n.Notify(store.AuditRecord{Username: "alice@example.org", Result: "ok"})
	}
	for range 5 {
		f.n.Notify(record(account.ResultAppPasswordCreated)) // not started: nobody drains
	}
	if d := f.m.get(account.ResultAppPasswordCreated, OutcomeDropped); d != 3 {
		t.Errorf("%d dropped, want 3", d)
	}
	f.n.Start()
	if err := f.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(f.rv.payloads()); got != 2 {
		t.Errorf("%d delivered after Start and Close, want the 2 queued", got)
	}
	f.n.Notify(record(account.ResultAppPasswordCreated)) // after Close: dropped, no panic
	if d := f.m.get(account.ResultAppPasswordCreated, OutcomeDropped); d != 4 {
		t.Errorf("%d dropped after Close, want 4", d)
	}
}

// An MFA reset or a bulk revocation is told when an admin did it, not
// when the owner did it in the portal; what is not an event is ignored.
func TestWhoNotifies(t *testing.T) {
	for _, c := range []struct {
		rec  store.AuditRecord
		want bool
	}{
		{record(account.ResultMFAReset), true},
		{store.AuditRecord{Username: "alice", Result: account.ResultMFAReset, Protocol: account.ProtocolPortal}, false},
		{store.AuditRecord{Username: "alice", Result: account.ResultAppPasswordsDeleted, Protocol: account.ProtocolPortal}, false},
		{record(account.ResultAppPasswordsDeleted), true},
		{store.AuditRecord{Username: "alice", Result: account.ResultAppPasswordRevoked}, false},
		{store.AuditRecord{Username: "alice", Result: "bad-secret"}, false},
		{record(ResultDeviceFirstUse), true},
	} {
		if got := Notifies(c.rec); got != c.want {
			t.Errorf("Notifies(%s by %s) = %v", c.rec.Result, c.rec.Protocol, got)
		}
	}
}

// The owner's language is used; the webhook carries the French text for
// a French account.
func TestLanguageOfAccount(t *testing.T) {
	f := newFixture(t, nil)
	f.n.Language = "en"
	rec := record(account.ResultAppPasswordRetired)
	f.n.handle(context.Background(), rec)
	rec.Username = "bob@example.org"
	f.n.handle(context.Background(), rec)
	got := f.rv.payloads()
	if len(got) != 2 || got[0].Language != "en" || got[1].Language != "fr" || got[0].Subject == got[1].Subject {
		t.Errorf("payloads %+v", got)
	}
}

// A webhook answering 503 is retried with doubling backoff, with the same
// delivery id; a 4xx is final; a receiver that keeps failing gets
// Attempts tries and the failure is counted.
func TestWebhookRetries(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.rv.fail = 2
	f.n.handle(ctx, record(account.ResultAppPasswordCreated))
	if len(f.rv.payloads()) != 1 || len(f.rv.ids) != 3 || f.rv.ids[0] != f.rv.ids[2] {
		t.Errorf("accepted %d after %d attempts %v, want 1 after 3 with one id", len(f.rv.payloads()), len(f.rv.ids), f.rv.ids)
	}
	if len(f.sleeps) != 2 || f.sleeps[0] != time.Second || f.sleeps[1] != 2*time.Second {
		t.Errorf("backoff %v, want [1s 2s]", f.sleeps)
	}

	f = newFixture(t, nil)
	f.rv.status = http.StatusBadRequest
	f.n.handle(ctx, record(account.ResultAppPasswordCreated))
	if len(f.rv.ids) != 1 || f.m.get(account.ResultAppPasswordCreated, OutcomeWebhookFailed) != 1 {
		t.Errorf("400: %d attempts, want 1, counted failed", len(f.rv.ids))
	}

	f = newFixture(t, nil)
	f.rv.fail = 100
	f.n.handle(ctx, record(account.ResultAppPasswordCreated))
	if len(f.rv.ids) != DefaultWebhookAttempts || f.m.get(account.ResultAppPasswordCreated, OutcomeWebhookFailed) != 1 {
		t.Errorf("always 503: %d attempts, want %d, counted failed", len(f.rv.ids), DefaultWebhookAttempts)
	}
}

// A signature made with another secret is refused by the receiver: the
// signature covers the secret, the timestamp and the body.
func TestWebhookSignatureNeedsSecret(t *testing.T) {
	body := []byte(`{"event":"x"}`)
	if sign([]byte("a"), "1", body) == sign([]byte("b"), "1", body) ||
		sign([]byte("a"), "1", body) == sign([]byte("a"), "2", body) ||
		sign([]byte("a"), "1", body) == sign([]byte("a"), "1", []byte(`{"event":"y"}`)) {
		t.Error("the signature ignores the secret, the timestamp or the body")
	}
}

// A receiver that never answers costs one client timeout per attempt,
// not a hung notifier: Post gives up after Attempts tries. The tries are
// counted as the client sends them: on a busy machine a request can time
// out before the receiver's handler runs, and it is a try all the same.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	tries := &countingTransport{RoundTripper: srv.Client().Transport}
	w := &Webhook{URL: srv.URL, Secret: []byte("k"), Attempts: 2,
		Client: &http.Client{Timeout: 50 * time.Millisecond, Transport: tries},
		Sleep:  func(context.Context, time.Duration) error { return nil }}
	err := w.Post(context.Background(), Payload{ID: "x", Event: "app-password-created"})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || tries.n.Load() != 2 {
		t.Errorf("Post = %v after %d tries, want a timeout after 2", err, tries.n.Load())
	}
}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	http.RoundTripper
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

// BenchmarkNotify is what the hook costs a login: a record that does not
// notify (the usual "ok"), and one that is queued.
func BenchmarkNotify(b *testing.B) {
	n := &Notifier{QueueSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
	login := store.AuditRecord{Username: "alice@example.org", Result: "ok"}
	created := record(account.ResultAppPasswordCreated)
	b.Run("login", func(b *testing.B) {
		for b.Loop() {
			n.Notify(login)
		}
	})
	b.Run("queued", func(b *testing.B) {
		for b.Loop() {
			n.Notify(created)
		}
	})
}

// Close that gives up cancels the delivery under way (a webhook waiting
// out its backoff) instead of leaving it running past shutdown.
func TestCloseGivesUp(t *testing.T) {
	f := newFixture(t, nil)
	f.rv.fail = 1000
	waiting := make(chan struct{})
	var once sync.Once
	f.n.Webhook.Sleep = func(ctx context.Context, _ time.Duration) error {
		once.Do(func() { close(waiting) })
		<-ctx.Done()
		return ctx.Err()
	}
	f.n.Start()
	f.n.Notify(record(account.ResultAppPasswordCreated))
	f.n.Notify(record(account.ResultAppPasswordRetired))
	<-waiting
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.n.Close(ctx); err == nil || !strings.Contains(err.Error(), "1 not delivered") {
		t.Errorf("Close = %v, want 1 not delivered", err)
	}
	<-f.n.done // the worker ended: the sleeping delivery was cancelled
	if got := f.m.get(account.ResultAppPasswordCreated, OutcomeWebhookFailed); got != 1 {
		t.Errorf("the cancelled delivery counted %d failed, want 1", got)
	}
	if got := f.m.get(account.ResultAppPasswordRetired, OutcomeDropped); got != 1 {
		t.Errorf("the one left in the queue counted %d dropped, want 1", got)
	}
}
