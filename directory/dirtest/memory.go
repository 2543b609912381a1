package dirtest

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/passgate/passgate/directory"
)

// Memory is an in-memory directory for the unit tests of its callers
// (authn, the sessions, the portal): accounts with a password and a state
// that the test changes while it runs, a switch that makes the directory
// unreachable, and a record of what it was asked. It keeps the promises
// of directory.Directory that callers rely on: names normalised with
// Names, an unknown user answered like a wrong password (ErrBadPassword,
// one request each), state revealed only after the password verified,
// ErrUnavailable while down. The zero value is an empty, reachable
// directory, safe for concurrent use.
type Memory struct {
	// Names normalises logins; set it before first use.
	Names directory.Names

	mu        sync.Mutex
	users     map[string]memUser
	down      bool
	passwords map[string]bool // every password Authenticate received

	lookups, auths atomic.Int64
}

type memUser struct {
	entry    directory.Entry
	password string
}

var _ directory.Directory = (*Memory)(nil)

// Set adds or replaces the account e.Username (normalised) with password.
func (m *Memory) Set(e directory.Entry, password string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = make(map[string]memUser)
	}
	m.users[e.Username] = memUser{entry: e, password: password}
}

// Update changes the entry of an existing account.
func (m *Memory) Update(username string, fn func(*directory.Entry)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[username]
	if !ok {
		panic("dirtest.Memory.Update: no account " + username)
	}
	fn(&u.entry)
	m.users[username] = u
}

// Delete removes an account.
func (m *Memory) Delete(username string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, username)
}

// SetDown makes the directory unreachable (true) or reachable again.
func (m *Memory) SetDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// Lookups and Authentications count the requests received, including
// those answered ErrUnavailable.
func (m *Memory) Lookups() int64         { return m.lookups.Load() }
func (m *Memory) Authentications() int64 { return m.auths.Load() }

// Received reports whether Authenticate was ever called with password.
func (m *Memory) Received(password string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.passwords[password]
}

// Lookup implements directory.Directory.
func (m *Memory) Lookup(ctx context.Context, username string) (directory.Entry, error) {
	name, err := m.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("memory lookup: %w", err)
	}
	m.lookups.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return directory.Entry{}, fmt.Errorf("memory lookup: %w", directory.ErrUnavailable)
	}
	u, ok := m.users[name]
	if !ok {
		return directory.Entry{}, fmt.Errorf("memory lookup: %w", directory.ErrNotFound)
	}
	return u.entry, nil
}

// Authenticate implements directory.Directory.
func (m *Memory) Authenticate(ctx context.Context, username, password string) (directory.Entry, error) {
	name, err := m.Names.Normalize(username)
	if err != nil {
		return directory.Entry{}, fmt.Errorf("memory authenticate: %w", err)
	}
	if password == "" {
		return directory.Entry{}, fmt.Errorf("memory authenticate: %w: empty password", directory.ErrBadPassword)
	}
	m.auths.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.passwords == nil {
		m.passwords = make(map[string]bool)
	}
	m.passwords[password] = true
	if m.down {
		return directory.Entry{}, fmt.Errorf("memory authenticate: %w", directory.ErrUnavailable)
	}
	u, ok := m.users[name]
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 {
		return directory.Entry{}, fmt.Errorf("memory authenticate: %w", directory.ErrBadPassword)
	}
	if u.entry.Disabled {
		return u.entry, fmt.Errorf("memory authenticate: %w", directory.ErrDisabled)
	}
	return u.entry, nil
}
