package authn

import (
	"context"

	"github.com/passgate/passgate/store"
)

// CheckSessions reads what memStore holds for each ref.
func (m *memStore) CheckSessions(_ context.Context, refs []store.SessionRef) ([]store.SessionState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.SessionState, len(refs))
	for i, ref := range refs {
		a, ok := m.accounts[ref.Username]
		if !ok {
			continue
		}
		out[i].Account = &a
		for _, p := range m.apps[ref.Username] {
			if ref.AppPasswordID != "" && p.ID == ref.AppPasswordID {
				out[i].AppPassword = &p
			}
		}
	}
	return out, nil
}
