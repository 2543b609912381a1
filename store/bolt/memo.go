package bolt

import (
	"bytes"
	"slices"
	"sync"

	"github.com/passgate/passgate/store"
)

// memoMax bounds the records a memo keeps; a full memo starts over.
const memoMax = 4096

// memo keeps the last decoded value of each record next to the bytes it
// was decoded from. Readers still read the record in their transaction
// every time (a revocation or change is seen at once: its bytes differ);
// only the JSON decoding of bytes already decoded is skipped, which was
// the larger part of a warm login's store reads (the cache hit's recheck
// and the session registration). Values go in and out as deep copies
// (clone), so that no caller shares memory with another.
type memo[T any] struct {
	clone func(T) T
	mu    sync.Mutex
	m     map[string]memoEntry[T]
}

type memoEntry[T any] struct {
	raw []byte
	v   T
}

// decode returns the decoding of raw, the record stored under key, by dec
// or from the memo. A nil memo always calls dec.
func (m *memo[T]) decode(key string, raw []byte, dec func([]byte) (T, error)) (T, error) {
	if m == nil {
		return dec(raw)
	}
	m.mu.Lock()
	e, ok := m.m[key]
	m.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return m.clone(e.v), nil
	}
	v, err := dec(raw)
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	if m.m == nil || len(m.m) >= memoMax {
		m.m = make(map[string]memoEntry[T])
	}
	m.m[key] = memoEntry[T]{raw: bytes.Clone(raw), v: m.clone(v)}
	m.mu.Unlock()
	return v, nil
}

// cloneAccount is a deep copy of a.
func cloneAccount(a store.Account) store.Account {
	a.Aliases = slices.Clone(a.Aliases)
	if a.TOTP != nil {
		t := *a.TOTP
		t.SecretEnc = bytes.Clone(t.SecretEnc)
		t.Recovery = slices.Clone(t.Recovery)
		for i := range t.Recovery {
			t.Recovery[i].Tag = bytes.Clone(t.Recovery[i].Tag)
		}
		t.RecoveryHashes = slices.Clone(t.RecoveryHashes)
		a.TOTP = &t
	}
	if a.OAuth != nil {
		o := *a.OAuth
		o.RefreshEnc = bytes.Clone(o.RefreshEnc)
		a.OAuth = &o
	}
	return a
}

// cloneAppPassword is a deep copy of p.
func cloneAppPassword(p store.AppPassword) store.AppPassword {
	p.Tag = bytes.Clone(p.Tag)
	p.Scopes = slices.Clone(p.Scopes)
	p.AllowFrom = slices.Clone(p.AllowFrom)
	if p.Bound != nil {
		b := *p.Bound
		p.Bound = &b
	}
	p.Drift = slices.Clone(p.Drift)
	return p
}
