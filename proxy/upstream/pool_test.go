package upstream

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// fakeIMAP is an upstream that accepts any number of connections and
// counts them: each greets, answers ID and AUTHENTICATE PLAIN (any
// credentials), and records what it saw.
type fakeIMAP struct {
	t           *testing.T
	ln          net.Listener
	expectProxy bool // each connection must start with a PROXY header
	down        bool // close each connection at once, without a greeting
	wg          sync.WaitGroup

	mu        sync.Mutex
	accepted  int
	preLogin  map[net.Conn]bool // open and not logged in
	closedPre int               // closed by passgate before any login
	ids       []string          // ID commands, in order
	loginConn []int             // for each login, its connection's number (1 = first accepted)
	proxied   []string          // source address of each PROXY header
}

func startFake(t *testing.T, expectProxy bool) *fakeIMAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIMAP{t: t, ln: ln, expectProxy: expectProxy, preLogin: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for c := range f.preLogin {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeIMAP) addr() string { return f.ln.Addr().String() }

func (f *fakeIMAP) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.accepted++
		f.preLogin[c] = true
		n := f.accepted
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c, n)
	}
}

func (f *fakeIMAP) serve(c net.Conn, n int) {
	defer f.wg.Done()
	defer c.Close()
	c.SetDeadline(time.Now().Add(scriptDeadline))
	br := bufio.NewReader(c)
	if f.expectProxy {
		h, err := proxyproto.Read(br)
		if err != nil {
			f.t.Errorf("fake upstream: no PROXY header: %v", err)
			return
		}
		f.mu.Lock()
		f.proxied = append(f.proxied, h.SourceAddr.String())
		f.mu.Unlock()
	}
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		f.mu.Lock()
		delete(f.preLogin, c)
		f.mu.Unlock()
		return
	}
	c.Write([]byte("* OK [CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN] fake ready\r\n"))
	loggedIn := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			f.mu.Lock()
			if !loggedIn {
				f.closedPre++
			}
			delete(f.preLogin, c)
			f.mu.Unlock()
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		verb, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(verb) {
		case "ID":
			f.mu.Lock()
			f.ids = append(f.ids, rest)
			f.mu.Unlock()
			c.Write([]byte("* ID NIL\r\n" + tag + " OK ID completed\r\n"))
		case "AUTHENTICATE":
			f.mu.Lock()
			loggedIn = true
			delete(f.preLogin, c)
			f.loginConn = append(f.loginConn, n)
			f.mu.Unlock()
			c.Write([]byte(tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"))
		case "LOGOUT":
			c.Write([]byte("* BYE bye\r\n" + tag + " OK done\r\n"))
		default:
			c.Write([]byte(tag + " BAD unknown\r\n"))
		}
	}
}

// counts returns connections accepted, open before login, and closed by
// passgate before login.
func (f *fakeIMAP) counts() (accepted, open, closedPre int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, len(f.preLogin), f.closedPre
}

// dropIdle closes, from the server side, every connection not logged in.
func (f *fakeIMAP) dropIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.preLogin {
		c.Close()
	}
}

// pooledIMAP is a client of f with a pool of size, closed by cleanup.
func pooledIMAP(t *testing.T, f *fakeIMAP, size int) *IMAP {
	u := Config{Address: f.addr(), Mode: ModeMaster, MasterUser: "proxy", MasterSecret: masterSecret,
		SendID: true, Pool: size}.IMAP()
	t.Cleanup(func() { u.Close() })
	return u
}

// waitFor polls cond (the pool fills in the background) for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// loginOK logs in as alice and closes the connection.
func loginOK(t *testing.T, u *IMAP) {
	t.Helper()
	c, err := u.Login(context.Background(), alice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !strings.Contains(c.Capability, "IDLE") {
		t.Errorf("Capability = %q, want the post-login list", c.Capability)
	}
	c.Close()
}

func TestPoolLoginOnReadyConnection(t *testing.T) {
	f := startFake(t, false)
	u := pooledIMAP(t, f, 2)
	loginOK(t, u) // dials itself; the pool fills behind it
	waitFor(t, "a full pool", func() bool { return u.pool.len() == 2 })
	if accepted, open, _ := f.counts(); accepted != 3 || open != 2 {
		t.Fatalf("accepted %d, open before login %d; want 3 and the 2 pooled", accepted, open)
	}
	loginOK(t, u)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.loginConn) != 2 || f.loginConn[1] > 3 {
		t.Errorf("logins on connections %v: want the second on one of the pooled 2 and 3", f.loginConn)
	}
	// The client's own ID comes after the pooled greeting, on its login.
	if len(f.ids) != 2 || !strings.Contains(f.ids[1], `"x-originating-ip" "192.0.2.7"`) {
		t.Errorf("ID commands %q, want one per login naming the client", f.ids)
	}
}

func TestPoolStaleConnectionDiscarded(t *testing.T) {
	f := startFake(t, false)
	u := pooledIMAP(t, f, 2)
	loginOK(t, u)
	waitFor(t, "a full pool", func() bool { return u.pool.len() == 2 })
	f.dropIdle() // the upstream's pre-login timeout, or a restart
	waitFor(t, "the server to see the closes", func() bool { _, open, _ := f.counts(); return open == 0 })
	loginOK(t, u) // both pooled connections are dead: it drops them and dials
	if n := u.pool.len(); n > 2 {
		t.Errorf("pool holds %d connections, more than its 2", n)
	}
}

func TestPoolBounded(t *testing.T) {
	f := startFake(t, false)
	const size, logins, parallel = 3, 40, 8
	u := pooledIMAP(t, f, size)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range logins / parallel {
				loginOK(t, u)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the refills", func() bool { return u.pool.len() == size })
	accepted, open, _ := f.counts()
	if accepted > logins+size {
		t.Errorf("accepted %d connections for %d logins: more than %d spare", accepted, logins, size)
	}
	if open != size {
		t.Errorf("%d connections wait for a login, want the pool's %d", open, size)
	}
}

func TestPoolExpired(t *testing.T) {
	f := startFake(t, false)
	u := pooledIMAP(t, f, 2)
	now := time.Now()
	u.pool.mu.Lock()
	u.pool.now = func() time.Time { return now }
	u.pool.mu.Unlock()
	loginOK(t, u)
	waitFor(t, "a full pool", func() bool { return u.pool.len() == 2 })
	u.pool.mu.Lock()
	now = now.Add(DefaultPoolMaxAge)
	u.pool.mu.Unlock()
	loginOK(t, u) // finds both expired: closes them, dials
	waitFor(t, "the expired connections closed", func() bool { _, _, closed := f.counts(); return closed == 2 })
}

func TestPoolNotWithSendProxy(t *testing.T) {
	f := startFake(t, true)
	u := Config{Address: f.addr(), Mode: ModeMaster, MasterUser: "proxy", MasterSecret: masterSecret,
		SendProxy: ProxyV2, Pool: 4}.IMAP()
	defer u.Close()
	if u.pool != nil {
		t.Fatal("a client with send_proxy has a pool")
	}
	loginOK(t, u)
	loginOK(t, u)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.accepted != 2 || len(f.proxied) != 2 || f.proxied[1] != alice.ClientIP.String() {
		t.Errorf("accepted %d, PROXY sources %q: want one connection per login naming %s", f.accepted, f.proxied, alice.ClientIP)
	}
}

func TestPoolCloseClosesAll(t *testing.T) {
	f := startFake(t, false)
	u := pooledIMAP(t, f, 3)
	loginOK(t, u)
	waitFor(t, "a full pool", func() bool { return u.pool.len() == 3 })
	u.Close()
	waitFor(t, "the pooled connections closed", func() bool { _, _, closed := f.counts(); return closed == 3 })
	accepted, _, _ := f.counts()
	loginOK(t, u) // still logs in, dialling itself
	if now, open, _ := f.counts(); now != accepted+1 || open != 0 {
		t.Errorf("after Close: accepted %d (before %d), %d waiting: want one dial and no refill", now, accepted, open)
	}
}

func TestPoolPausesAfterFailedDial(t *testing.T) {
	f := startFake(t, false)
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	u := pooledIMAP(t, f, 4)
	now := time.Now()
	u.pool.mu.Lock()
	u.pool.now = func() time.Time { return now }
	u.pool.mu.Unlock()
	login := func() {
		if _, err := u.Login(context.Background(), alice); err == nil {
			t.Fatal("Login succeeded against a server that closes at once")
		}
	}
	login() // its own dial, and the pool's 4, all fail
	waitFor(t, "the pool's dials", func() bool {
		u.pool.mu.Lock()
		defer u.pool.mu.Unlock()
		return u.pool.filling == 0
	})
	before, _, _ := f.counts()
	login()
	login()
	if after, _, _ := f.counts(); after != before+2 {
		t.Errorf("2 logins against a failing upstream dialled %d times, want 2 (no pool dials within %s)", after-before, fillPause)
	}
	u.pool.mu.Lock()
	now = now.Add(fillPause)
	u.pool.mu.Unlock()
	login() // the pause is over: the pool dials again
	waitFor(t, "the pool's dials after the pause", func() bool { n, _, _ := f.counts(); return n == before+2+1+4 })
}
