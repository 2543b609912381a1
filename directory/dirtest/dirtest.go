// Package dirtest is the conformance suite that every directory kind passes
// against a real server (slapd, Dovecot): found and unknown users, right and
// wrong passwords, disabled, MFA and admin accounts, injection attempts,
// equal work for unknown and known users, a password changed while running,
// unreachable, silent and babbling servers (ErrUnavailable, never a false
// accept) and context cancellation.
package dirtest

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
)

// User is a directory account and its primary password.
type User struct {
	Name     string // as a user would type it (any case)
	Password string
}

// Fixture describes a directory under test and the accounts its server
// holds. Every User must exist in the directory with that password.
type Fixture struct {
	Dir directory.Directory
	// Plain is an enabled account in no special group. Changing is another
	// such account, whose password the suite changes (SetPassword).
	Plain, Changing User
	// MFA must use a second factor; Admin is an administrator; Disabled is
	// disabled in the directory.
	MFA, Admin, Disabled User
	// Unknown is a login the directory does not know.
	Unknown string

	// NoLookup: the kind cannot look users up (Lookup returns
	// ErrUnsupported).
	NoLookup bool
	// NoState: the kind cannot tell MFA, admin or disabled accounts (the
	// disabled account then fails with ErrBadPassword or ErrDisabled).
	NoState bool

	// Work returns how many requests the directory has sent so far (nil:
	// the work comparison is skipped, with a message).
	Work func() int64
	// SetPassword changes u's password in the directory.
	SetPassword func(t *testing.T, u User, password string)
	// Connect returns a directory of the same kind and configuration that
	// talks to addr ("127.0.0.1:port") in the same protocol, with timeout.
	// Nil: the kind has no network of its own (passgate's store); the
	// unreachable-server and cancellation tests are skipped.
	Connect func(t *testing.T, addr string, timeout time.Duration) directory.Directory
}

// Run runs the suite.
func Run(t *testing.T, f Fixture) {
	t.Run("Lookup", func(t *testing.T) { testLookup(t, f) })
	t.Run("Authenticate", func(t *testing.T) { testAuthenticate(t, f) })
	t.Run("State", func(t *testing.T) { testState(t, f) })
	t.Run("Injection", func(t *testing.T) { testInjection(t, f) })
	t.Run("EqualWork", func(t *testing.T) { testEqualWork(t, f) })
	t.Run("PasswordChange", func(t *testing.T) { testPasswordChange(t, f) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f) })
	t.Run("Unavailable", func(t *testing.T) { testUnavailable(t, f) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, f) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testLookup(t *testing.T, f Fixture) {
	e, err := f.Dir.Lookup(ctx(t), f.Plain.Name)
	if f.NoLookup {
		if !errors.Is(err, directory.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Lookup of a kind that cannot look up: %+v, %v; want ErrUnsupported", e, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Lookup(%q): %v", f.Plain.Name, err)
	}
	if e.Username == "" || e.Username != strings.ToLower(e.Username) || e.Disabled || e.MFARequired || e.Admin {
		t.Fatalf("Lookup(%q) = %+v, want a normalised enabled account in no group", f.Plain.Name, e)
	}
	upper, err := f.Dir.Lookup(ctx(t), strings.ToUpper(f.Plain.Name))
	if err != nil || upper.Username != e.Username || upper.ID != e.ID {
		t.Fatalf("Lookup(%q) = %+v, %v; want the same account as %+v", strings.ToUpper(f.Plain.Name), upper, err, e)
	}
	if _, err := f.Dir.Lookup(ctx(t), f.Unknown); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("Lookup(unknown %q): %v, want ErrNotFound", f.Unknown, err)
	}
}

func testAuthenticate(t *testing.T, f Fixture) {
	c := ctx(t)
	e, err := f.Dir.Authenticate(c, f.Plain.Name, f.Plain.Password)
	if err != nil || e.Username == "" {
		t.Fatalf("Authenticate(%q, right password) = %+v, %v", f.Plain.Name, e, err)
	}
	if !f.NoLookup {
		l, err := f.Dir.Lookup(c, f.Plain.Name)
		if err != nil || l.Username != e.Username || l.ID != e.ID {
			t.Fatalf("Lookup = %+v, %v; Authenticate = %+v: want the same account", l, err, e)
		}
	}
	if e2, err := f.Dir.Authenticate(c, strings.ToUpper(f.Plain.Name), f.Plain.Password); err != nil || e2.Username != e.Username {
		t.Fatalf("Authenticate(upper-case %q) = %+v, %v; want %q", f.Plain.Name, e2, err, e.Username)
	}
	refused := []struct {
		name, user, password string
		want                 []error
	}{
		{"wrong password", f.Plain.Name, f.Plain.Password + "x", []error{directory.ErrBadPassword}},
		{"password prefix", f.Plain.Name, f.Plain.Password[:len(f.Plain.Password)-1], []error{directory.ErrBadPassword}},
		{"other user's password", f.Plain.Name, f.MFA.Password, []error{directory.ErrBadPassword}},
		{"empty password", f.Plain.Name, "", []error{directory.ErrBadPassword}},
		{"unknown user", f.Unknown, f.Plain.Password, []error{directory.ErrNotFound, directory.ErrBadPassword}},
		{"empty user", "", f.Plain.Password, []error{directory.ErrNotFound, directory.ErrBadPassword}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			e, err := f.Dir.Authenticate(c, tt.user, tt.password)
			if !isOneOf(err, tt.want...) {
				t.Fatalf("Authenticate = %+v, %v; want one of %v", e, err, tt.want)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("the error %q contains the password", err)
			}
		})
	}
}

func testState(t *testing.T, f Fixture) {
	c := ctx(t)
	t.Run("disabled", func(t *testing.T) {
		e, err := f.Dir.Authenticate(c, f.Disabled.Name, f.Disabled.Password)
		if f.NoState {
			if !isOneOf(err, directory.ErrDisabled, directory.ErrBadPassword) {
				t.Fatalf("Authenticate(disabled) = %+v, %v; want ErrDisabled or ErrBadPassword", e, err)
			}
		} else if !errors.Is(err, directory.ErrDisabled) || !e.Disabled || e.Username == "" {
			t.Fatalf("Authenticate(disabled, right password) = %+v, %v; want the entry with ErrDisabled", e, err)
		}
		if _, err := f.Dir.Authenticate(c, f.Disabled.Name, f.Disabled.Password+"x"); !isOneOf(err, directory.ErrBadPassword, directory.ErrDisabled) {
			t.Fatalf("Authenticate(disabled, wrong password): %v", err)
		}
		if !f.NoLookup && !f.NoState {
			if e, err := f.Dir.Lookup(c, f.Disabled.Name); err != nil || !e.Disabled {
				t.Fatalf("Lookup(disabled) = %+v, %v; want Disabled", e, err)
			}
		}
	})
	for _, tt := range []struct {
		name       string
		u          User
		mfa, admin bool
	}{{"mfa", f.MFA, true, false}, {"admin", f.Admin, false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			if f.NoState {
				tt.mfa, tt.admin = false, false // cannot tell: never claims
			}
			e, err := f.Dir.Authenticate(c, tt.u.Name, tt.u.Password)
			if err != nil || e.MFARequired != tt.mfa || e.Admin != tt.admin || e.Disabled {
				t.Fatalf("Authenticate(%q) = %+v, %v; want MFARequired %v, Admin %v", tt.u.Name, e, err, tt.mfa, tt.admin)
			}
			if f.NoLookup {
				return
			}
			if l, err := f.Dir.Lookup(c, tt.u.Name); err != nil || l.MFARequired != tt.mfa || l.Admin != tt.admin {
				t.Fatalf("Lookup(%q) = %+v, %v; want MFARequired %v, Admin %v", tt.u.Name, l, err, tt.mfa, tt.admin)
			}
		})
	}
}

// injections are logins that try to make a query match another user, or
// every user, or smuggle protocol fields. None may find anything.
func injections(plain string) []string {
	local, _, _ := strings.Cut(plain, "@")
	return []string{
		"*",
		"*)(uid=*",
		"*)(|(mail=*",
		local + "*",
		local + ")(|(uid=*)",
		local + ")(|(objectClass=x)",
		local + ")(|(uid=" + local,
		"x)(uid=" + local, // valid once unescaped: (|(mail=x)(uid=<local>@...)(uid=x)(uid=<local>))
		plain + ")(|(mail=x)",
		local + `\2a`,
		local + "\tuser=" + plain,
		local + "\x01t" + "master=x",
		local + "\nAUTH\t1\tPLAIN",
		local + "\x00",
		local + "@",
		"@" + local,
	}
}

func testInjection(t *testing.T, f Fixture) {
	c := ctx(t)
	for _, login := range injections(f.Plain.Name) {
		if e, err := f.Dir.Authenticate(c, login, f.Plain.Password); !isOneOf(err, directory.ErrNotFound, directory.ErrBadPassword) {
			t.Errorf("Authenticate(%q, %s's password) = %+v, %v; want ErrNotFound or ErrBadPassword", login, f.Plain.Name, e, err)
		}
		if f.NoLookup {
			continue
		}
		if e, err := f.Dir.Lookup(c, login); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("Lookup(%q) = %+v, %v; want ErrNotFound", login, e, err)
		}
	}
}

func testEqualWork(t *testing.T, f Fixture) {
	if f.Work == nil {
		t.Skip("this kind does not count its requests")
	}
	c := ctx(t)
	cost := func(user, password string) int64 {
		before := f.Work()
		f.Dir.Authenticate(c, user, password)
		return f.Work() - before
	}
	unknown := cost(f.Unknown, "wrong-password")
	known := cost(f.Plain.Name, "wrong-password")
	disabled := cost(f.Disabled.Name, "wrong-password")
	t.Logf("requests for a wrong password: unknown user %d, known %d, disabled %d", unknown, known, disabled)
	if unknown == 0 || unknown != known || known != disabled {
		t.Fatalf("a wrong password costs %d requests for an unknown user, %d for a known one, %d for a disabled one: want the same, not zero", unknown, known, disabled)
	}
}

func testPasswordChange(t *testing.T, f Fixture) {
	if f.SetPassword == nil {
		t.Skip("the fixture cannot change passwords")
	}
	c := ctx(t)
	u := f.Changing
	if _, err := f.Dir.Authenticate(c, u.Name, u.Password); err != nil {
		t.Fatalf("Authenticate before the change: %v", err)
	}
	next := u.Password + "-changed"
	f.SetPassword(t, u, next)
	t.Cleanup(func() { f.SetPassword(t, User{Name: u.Name, Password: next}, u.Password) })
	// Some servers re-read their files at most once a second.
	eventually(t, 10*time.Second, "the new password to work and the old one to fail", func() bool {
		_, newErr := f.Dir.Authenticate(c, u.Name, next)
		_, oldErr := f.Dir.Authenticate(c, u.Name, u.Password)
		return newErr == nil && errors.Is(oldErr, directory.ErrBadPassword)
	})
}

func testConcurrent(t *testing.T, f Fixture) {
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 4 {
				u, ok := f.Plain, (i+j)%2 == 0
				if i%3 == 0 {
					u = f.MFA
				}
				pw := u.Password
				if !ok {
					pw += "-wrong"
				}
				e, err := f.Dir.Authenticate(c, u.Name, pw)
				if ok && err != nil {
					errs <- "right password refused: " + err.Error()
				}
				if !ok && !errors.Is(err, directory.ErrBadPassword) {
					errs <- "wrong password not refused as such: " + errString(err) + " " + e.Username
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func testUnavailable(t *testing.T, f Fixture) {
	if f.Connect == nil {
		t.Skip("this kind has no network of its own")
	}
	servers := map[string]string{
		"closed port": closedPort(t),
		"silent":      silentServer(t),
		"babbling":    babblingServer(t),
	}
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			d := f.Connect(t, addr, 500*time.Millisecond)
			c := ctx(t)
			e, err := d.Authenticate(c, f.Plain.Name, f.Plain.Password)
			if !errors.Is(err, directory.ErrUnavailable) {
				t.Fatalf("Authenticate = %+v, %v; want ErrUnavailable", e, err)
			}
			if strings.Contains(err.Error(), f.Plain.Password) {
				t.Fatalf("the error %q contains the password", err)
			}
			if f.NoLookup {
				return
			}
			if e, err := d.Lookup(c, f.Plain.Name); !errors.Is(err, directory.ErrUnavailable) {
				t.Fatalf("Lookup = %+v, %v; want ErrUnavailable", e, err)
			}
		})
	}
}

func testCancel(t *testing.T, f Fixture) {
	if f.Connect == nil {
		t.Skip("this kind has no network of its own")
	}
	d := f.Connect(t, silentServer(t), time.Minute)
	c, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if e, err := d.Authenticate(c, f.Plain.Name, f.Plain.Password); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate with a cancelled context = %+v, %v; want context.Canceled", e, err)
	}
	c, cancel = context.WithCancel(context.Background())
	cancel()
	if e, err := d.Authenticate(c, f.Plain.Name, f.Plain.Password); err == nil {
		t.Fatalf("Authenticate with a context cancelled before = %+v, want an error", e)
	}
}

func isOneOf(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// eventually polls cond every 100 ms until it holds or wait passes.
func eventually(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", wait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// closedPort returns an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and reads, but never answers.
func silentServer(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}

// babblingServer answers anything with a line of nonsense and closes.
func babblingServer(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nOK\t1\tuser=x\r\n* OK\r\n\r\n"))
	})
}

// serve runs handle for each connection on 127.0.0.1 until the test ends.
func serve(t *testing.T, handle func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Minute))
				handle(c)
			})
		}
	})
	return ln.Addr().String()
}
