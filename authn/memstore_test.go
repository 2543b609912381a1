package authn

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/passgate/passgate/store"
)

// memStore is an in-memory store.Store for unit tests, with injectable
// failures. It keeps no events: Subscribe returns a channel that only closes.
type memStore struct {
	mu       sync.Mutex
	accounts map[string]store.Account
	apps     map[string][]store.AppPassword // by username, in creation order
	key      []byte

	// Injected failures (nil = none).
	failGet, failFind, failTouch, failKey error
	// failCreateApp is returned by the next failCreateAppN CreateAppPassword
	// calls (negative = always).
	failCreateApp  error
	failCreateAppN int
	createAppCalls int
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		accounts: map[string]store.Account{},
		apps:     map[string][]store.AppPassword{},
		key:      bytes.Repeat([]byte{0x5a}, 32),
	}
}

func (m *memStore) CreateAccount(_ context.Context, a store.Account) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.accounts[a.Username]; ok {
		return store.ErrExists
	}
	m.accounts[a.Username] = a
	return nil
}

func (m *memStore) GetAccount(_ context.Context, username string) (store.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet != nil {
		return store.Account{}, m.failGet
	}
	a, ok := m.accounts[username]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}

func (m *memStore) UpdateAccount(_ context.Context, username string, fn func(*store.Account) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accounts[username]
	if !ok {
		return store.ErrNotFound
	}
	if err := fn(&a); err != nil {
		return err
	}
	m.accounts[username] = a
	return nil
}

func (m *memStore) ListAccounts(context.Context) ([]store.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Account
	for _, a := range m.accounts {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b store.Account) int {
		if a.Username < b.Username {
			return -1
		}
		if a.Username > b.Username {
			return 1
		}
		return 0
	})
	return out, nil
}

func (m *memStore) CreateAppPassword(_ context.Context, p store.AppPassword) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.createAppCalls++
	if m.failCreateApp != nil && m.failCreateAppN != 0 {
		m.failCreateAppN--
		return m.failCreateApp
	}
	if _, ok := m.accounts[p.Username]; !ok {
		return store.ErrNotFound
	}
	for _, q := range m.apps[p.Username] {
		if q.ID == p.ID || bytes.Equal(q.Tag, p.Tag) {
			return store.ErrExists
		}
	}
	m.apps[p.Username] = append(m.apps[p.Username], p)
	return nil
}

func (m *memStore) ListAppPasswords(_ context.Context, username string) ([]store.AppPassword, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.accounts[username]; !ok {
		return nil, store.ErrNotFound
	}
	return slices.Clone(m.apps[username]), nil
}

func (m *memStore) FindAppPassword(_ context.Context, username string, tag []byte) (store.AppPassword, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failFind != nil {
		return store.AppPassword{}, m.failFind
	}
	for _, p := range m.apps[username] {
		if bytes.Equal(p.Tag, tag) {
			return p, nil
		}
	}
	return store.AppPassword{}, store.ErrNotFound
}

func (m *memStore) RevokeAppPassword(_ context.Context, username, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.apps[username], func(p store.AppPassword) bool { return p.ID == id })
	if i < 0 {
		return store.ErrNotFound
	}
	m.apps[username] = slices.Delete(m.apps[username], i, i+1)
	return nil
}

func (m *memStore) RevokeAllAppPasswords(_ context.Context, usernames []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range usernames {
		if _, ok := m.accounts[u]; !ok {
			return 0, store.ErrNotFound
		}
	}
	n := 0
	for _, u := range usernames {
		n += len(m.apps[u])
		delete(m.apps, u)
	}
	return n, nil
}

func (m *memStore) TouchAppPassword(_ context.Context, username, id string, use store.LastUse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failTouch != nil {
		return m.failTouch
	}
	for i, p := range m.apps[username] {
		if p.ID == id {
			m.apps[username][i].LastUsed = use
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memStore) UpdateAppPassword(_ context.Context, username, id string, fn func(*store.AppPassword) error) (store.AppPassword, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.apps[username] {
		if p.ID == id {
			after := p
			if err := fn(&after); err != nil {
				return store.AppPassword{}, err
			}
			if err := store.CheckAppPasswordUpdate(&p, &after); err != nil {
				return store.AppPassword{}, err
			}
			m.apps[username][i] = after
			return after, nil
		}
	}
	return store.AppPassword{}, store.ErrNotFound
}

func (m *memStore) LookupKey(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failKey != nil {
		return nil, m.failKey
	}
	return m.key, nil
}

func (m *memStore) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	ch := make(chan store.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

func (m *memStore) Close() error { return nil }

// app returns the stored app password with id, or ok false.
func (m *memStore) app(username, id string) (store.AppPassword, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.apps[username] {
		if p.ID == id {
			return p, true
		}
	}
	return store.AppPassword{}, false
}

// editApp applies fn to the stored app password with id.
func (m *memStore) editApp(username, id string, fn func(*store.AppPassword)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.apps[username] {
		if m.apps[username][i].ID == id {
			fn(&m.apps[username][i])
		}
	}
}

// set changes injected failures under the lock.
func (m *memStore) set(fn func(*memStore)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}
