package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/passgate/passgate/authn"
	accountsvc "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// In-process passgate: the login path of `passgate serve` (a real
// authn.Verifier with cheap argon2id, the sessions registry following the
// store, the IMAP front end on a real listener) in this test process, in
// front of go-imap's in-memory server, on bolt or on a real redis-server.
// It keeps tests with hundreds of sessions fast; the binary against Dovecot
// is covered by the other tests.

// inProcOpts adjust an in-process passgate.
type inProcOpts struct {
	// Cache is the registry's login cache; nil: a real authn.Cache.
	Cache sessions.Cache
	// RecheckInterval is the registry's; zero: an hour (out of play).
	RecheckInterval time.Duration
}

// inProc is a running in-process passgate.
type inProc struct {
	st   accountsvc.Store
	v    *authn.Verifier
	reg  *sessions.Registry
	addr string // plain IMAP, cleartext LOGIN allowed (loopback)
	mem  *imapmemserver.Server
}

// startInProc serves passgate on st until the test ends.
func startInProc(t testing.TB, st accountsvc.Store, o inProcOpts) *inProc {
	t.Helper()
	p := &inProc{st: st, mem: imapmemserver.New(),
		v: &authn.Verifier{Store: st, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}}}
	upAddr := serveMem(t, p.mem)
	if o.Cache == nil {
		o.Cache = &authn.Cache{}
	}
	if o.RecheckInterval == 0 {
		o.RecheckInterval = time.Hour
	}
	quiet := slog.New(slog.DiscardHandler)
	p.reg = &sessions.Registry{Store: st, Cache: o.Cache, RecheckInterval: o.RecheckInterval, Logger: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	watched, err := p.reg.Watch(ctx)
	if err != nil {
		t.Fatalf("sessions: %v", err)
	}
	srv := &imap.Server{
		Auth: p.v,
		Upstream: &upstream.IMAP{Address: upAddr, Mode: upstream.ModeLoginMaster,
			MasterUser: masterUser, MasterSecret: masterSecret, Separator: "*", Logger: quiet},
		Sessions:       p.reg,
		AllowCleartext: true,
		Logger:         quiet,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
		cancel()
		<-watched
	})
	return p
}

// serveMem serves mem on 127.0.0.1 until the test ends. Its users are named
// "user*proxy" with the master secret, so that passgate's login-master
// mode (LOGIN "user*proxy" secret) logs in as user.
func serveMem(t testing.TB, mem *imapmemserver.Server) string {
	t.Helper()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// testActor makes the in-process tests' account changes.
var testActor = accountsvc.Actor{Door: accountsvc.DoorCLI, Name: "test"}

// accounts is the account service on p's store.
func (p *inProc) accounts() *accountsvc.Service {
	return &accountsvc.Service{Store: p.st, Verifier: p.v, Logger: slog.New(slog.DiscardHandler)}
}

// account creates user in passgate's store and upstream.
func (p *inProc) account(t testing.TB, user string) {
	t.Helper()
	if err := p.accounts().CreateUser(context.Background(), testActor, accountsvc.NewUser{Username: user}); err != nil {
		t.Fatalf("create %s: %v", user, err)
	}
	p.mem.AddUser(imapmemserver.NewUser(user+"*"+masterUser, masterSecret))
}

// appPassword creates an app password of user, expiring at expires (zero:
// never).
func (p *inProc) appPassword(t testing.TB, user, name string, expires time.Time) accountsvc.NewAppPassword {
	t.Helper()
	np, err := p.accounts().CreateAppPassword(context.Background(), testActor, user, name, accountsvc.AppPasswordOptions{Expires: expires})
	if err != nil {
		t.Fatalf("app password %s of %s: %v", name, user, err)
	}
	return np
}

// rawSession is a logged-in IMAP connection that notes when it closes.
type rawSession struct {
	user   string
	conn   net.Conn
	closed chan time.Time // receives the time the server closed it
}

// open logs in as user over raw IMAP and leaves the session open.
func (p *inProc) open(t testing.TB, user, secret string) *rawSession {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", quote(user), quote(secret))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("login as %s: %v", user, err)
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				t.Fatalf("login as %s: %q", user, line)
			}
			break
		}
	}
	c.SetDeadline(time.Time{})
	s := &rawSession{user: user, conn: c, closed: make(chan time.Time, 1)}
	go func() {
		io.Copy(io.Discard, r)
		s.closed <- time.Now()
	}()
	return s
}

// waitClosed waits until the session was closed and returns when.
func (s *rawSession) waitClosed(t testing.TB) time.Time {
	t.Helper()
	select {
	case at := <-s.closed:
		return at
	case <-time.After(3 * closeDeadline):
		t.Fatalf("session of %s still open %v after its revocation", s.user, 3*closeDeadline)
		return time.Time{}
	}
}

// stillOpen checks that the session relays a command to the upstream and
// back.
func (s *rawSession) stillOpen(t testing.TB) {
	t.Helper()
	select {
	case <-s.closed:
		t.Fatalf("session of %s was closed", s.user)
	default:
	}
	s.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(s.conn, "n NOOP\r\n"); err != nil {
		t.Fatalf("session of %s: NOOP: %v", s.user, err)
	}
}

// bulkSessions creates users × perUser app passwords and opens one session
// with each, plus a bystander's session that no revocation concerns.
func bulkSessions(t testing.TB, p *inProc, users, perUser int) (names []string, live []*rawSession, bystander *rawSession) {
	t.Helper()
	for u := range users {
		name := fmt.Sprintf("user%03d@example.org", u)
		names = append(names, name)
		p.account(t, name)
		for i := range perUser {
			np := p.appPassword(t, name, fmt.Sprintf("device %d", i), time.Time{})
			live = append(live, p.open(t, name, np.Password))
		}
	}
	p.account(t, "bystander@example.org")
	np := p.appPassword(t, "bystander@example.org", "phone", time.Time{})
	return names, live, p.open(t, "bystander@example.org", np.Password)
}

// lastClosed waits for every session to close and returns the time the
// last one did.
func lastClosed(t testing.TB, live []*rawSession) time.Time {
	t.Helper()
	var last time.Time
	for _, s := range live {
		if at := s.waitClosed(t); at.After(last) {
			last = at
		}
	}
	return last
}

// stallingCache is a real login cache whose first Drop holds the
// registry's event reader until release is closed: a reader that falls
// behind, so that the store's event buffer overflows.
type stallingCache struct {
	*authn.Cache
	once             sync.Once
	stalled, release chan struct{}

	mu      sync.Mutex
	drops   int
	cleared int
}

func newStallingCache() *stallingCache {
	return &stallingCache{Cache: &authn.Cache{}, stalled: make(chan struct{}), release: make(chan struct{})}
}

func (c *stallingCache) Drop(ev store.Event) {
	c.once.Do(func() {
		close(c.stalled)
		<-c.release
	})
	c.mu.Lock()
	c.drops++
	c.mu.Unlock()
	c.Cache.Drop(ev)
}

func (c *stallingCache) Clear() {
	c.mu.Lock()
	c.cleared++
	c.mu.Unlock()
	c.Cache.Clear()
}

// counts returns the events delivered to Drop and the Clear calls.
func (c *stallingCache) counts() (drops, cleared int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops, c.cleared
}
