package portal

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// Authorization code flows (the OpenID Connect sign-in, the mailbox link)
// start with a pre-session: a random cookie whose SHA-256 keys a KV record
// (so every instance finds it) holding the flow's state, nonce and PKCE
// verifier. The provider gets only the opaque state and the S256
// challenge. The callback accepts a state only from the browser that
// started the flow (its cookie: no login CSRF), only once (the record is
// deleted before the code is redeemed), and only within flowTTL.
//
// Starting a flow is a GET (a link, not a form: the CSP's form-action
// 'self' would stop a form's redirect to the provider), so it writes only
// this pre-session, and at most maxFlowsPerAddress of them per address and
// flowTTL on one instance: anyone may start flows, but cannot fill the KV.

const (
	flowTTL    = 10 * time.Minute
	flowPrefix = "portal/flow/"
	// maxFlowsPerAddress bounds the flows one client address (IPv6: its
	// /64) starts per flowTTL, per instance.
	maxFlowsPerAddress = 30
)

// Flow purposes.
const (
	flowSignIn = "signin"
	flowLink   = "link"
)

// flow is a pre-session as the KV keeps it.
type flow struct {
	Purpose  string    `json:"p"`
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"` // PKCE code verifier (RFC 7636)
	User     string    `json:"u,omitempty"`
	Expires  time.Time `json:"e"`
}

var (
	// errTooManyFlows: the address started maxFlowsPerAddress flows.
	errTooManyFlows = errors.New("too many sign-in attempts from this address")
	// errNoFlow: no pre-session for this browser, purpose and state
	// (expired, used, started in another browser, or forged).
	errNoFlow = errors.New("no such sign-in in progress")
)

func (s *Server) flowCookie() string {
	if s.secureCookies() {
		return "__Host-passgate-flow"
	}
	return "passgate-flow"
}

// startFlow stores a new pre-session for purpose (and user, for a link)
// and sets its cookie, replacing any earlier flow of the browser.
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, purpose, user string) (flow, error) {
	ctx := r.Context()
	if !s.flows.allow(ctx, s.remoteAddr(r).Addr(), s.now) {
		return flow{}, errTooManyFlows
	}
	f := flow{Purpose: purpose, State: newToken(), Nonce: newToken(), Verifier: oauth2.GenerateVerifier(),
		User: user, Expires: s.now().Add(flowTTL)}
	b, err := json.Marshal(f)
	if err != nil {
		return flow{}, fmt.Errorf("start %s flow: %w", purpose, err)
	}
	token := newToken()
	if err := s.Store.PutKV(ctx, flowKey(token), b, flowTTL); err != nil {
		return flow{}, fmt.Errorf("start %s flow: %w", purpose, err)
	}
	if c, err := r.Cookie(s.flowCookie()); err == nil && c.Value != "" && len(c.Value) <= 100 {
		s.Store.DeleteKV(ctx, flowKey(c.Value)) // the earlier flow, if any
	}
	http.SetCookie(w, &http.Cookie{Name: s.flowCookie(), Value: token, Path: "/", MaxAge: int(flowTTL / time.Second),
		Secure: s.secureCookies(), HttpOnly: true,
		// Lax: the provider's redirect back is a top-level GET from
		// another site, which must carry the cookie.
		SameSite: http.SameSiteLaxMode})
	return f, nil
}

// takeFlow returns the browser's pre-session for purpose if state is its
// state, and deletes it and its cookie whatever the outcome: a flow is
// redeemed once. errNoFlow if there is none that matches.
func (s *Server) takeFlow(w http.ResponseWriter, r *http.Request, purpose, state string) (flow, error) {
	ctx := r.Context()
	c, err := r.Cookie(s.flowCookie())
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return flow{}, errNoFlow
	}
	http.SetCookie(w, &http.Cookie{Name: s.flowCookie(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	key := flowKey(c.Value)
	b, err := s.Store.GetKV(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return flow{}, errNoFlow
	}
	if err != nil {
		return flow{}, fmt.Errorf("read %s flow: %w", purpose, err)
	}
	if err := s.Store.DeleteKV(ctx, key); err != nil {
		return flow{}, fmt.Errorf("end %s flow: %w", purpose, err)
	}
	var f flow
	if json.Unmarshal(b, &f) != nil || f.Purpose != purpose || !s.now().Before(f.Expires) ||
		subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return flow{}, errNoFlow
	}
	return f, nil
}

// flowKey is the KV key of a pre-session cookie: its SHA-256.
func flowKey(token string) string { return flowPrefix + sessionKey(token)[len(sessionPrefix):] }

// flowLimiter counts the flows started per client network, in memory (it
// bounds KV writes, not logins). The zero value is ready to use.
type flowLimiter struct {
	once sync.Once
	c    *memcount.Counters
}

// allow counts one flow of addr and reports whether it is within the
// limit. A counter failure (none in memory) allows.
func (l *flowLimiter) allow(ctx context.Context, addr netip.Addr, now func() time.Time) bool {
	l.once.Do(func() { l.c = &memcount.Counters{Now: now} })
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	pfx, err := addr.Prefix(bits)
	if err != nil {
		return true // no address (a test's pipe): nothing to count by
	}
	n, err := l.c.Incr(ctx, "flow/"+pfx.String(), 1, flowTTL)
	return err != nil || n <= maxFlowsPerAddress
}
