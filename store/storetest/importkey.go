package storetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/passgate/passgate/store"
)

// KeyImporter is a backend that can adopt another installation's lookup
// key (what `passgate store migrate` needs of its destination).
type KeyImporter interface {
	store.Store
	ImportLookupKey(ctx context.Context, key []byte) error
}

// RunImportLookupKey is the conformance suite of ImportLookupKey: set if
// absent, no change if equal, replace a different key only while no app
// password depends on it. o.New must return a KeyImporter; with o.Reopen
// set, the imported key must survive a reopen.
func RunImportLookupKey(t *testing.T, o Opener) {
	t.Helper()
	newStore := func(t *testing.T) KeyImporter {
		s, ok := o.New(t).(KeyImporter)
		if !ok {
			t.Fatal("storetest: the store has no ImportLookupKey")
		}
		return s
	}
	key := bytes.Repeat([]byte{0x5a}, 32)

	t.Run("Absent", func(t *testing.T) {
		s := newStore(t)
		mustImport(t, s, key)
		wantKey(t, s, key)
		mustImport(t, s, key) // the same key again changes nothing
		wantKey(t, s, key)
		if o.Reopen != nil {
			wantKey(t, o.Reopen(t, s), key)
		}
	})
	t.Run("ReplaceUnused", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.LookupKey(t.Context()); err != nil {
			t.Fatalf("LookupKey: %v", err)
		}
		mustCreateAccount(t, s, "alice")
		mustImport(t, s, key)
		wantKey(t, s, key)
	})
	t.Run("RefuseUsed", func(t *testing.T) {
		s := newStore(t)
		old, err := s.LookupKey(t.Context())
		if err != nil {
			t.Fatalf("LookupKey: %v", err)
		}
		mustCreateAccount(t, s, "alice")
		mustCreateAccount(t, s, "bob")
		ps := mustCreateAppPasswords(t, s, "bob", 2)
		err = s.ImportLookupKey(t.Context(), key)
		wantErr(t, "ImportLookupKey over a key in use", err, store.ErrExists)
		wantKey(t, s, old)
		if o.Reopen != nil {
			s = o.Reopen(t, s).(KeyImporter)
			wantKey(t, s, old)
		}
		if _, err := s.FindAppPassword(t.Context(), "bob", ps[0].Tag); err != nil {
			t.Fatalf("FindAppPassword after the refused import: %v", err)
		}
		// Once no app password depends on the old key, it can go.
		if _, err := s.RevokeAllAppPasswords(t.Context(), []string{"bob"}); err != nil {
			t.Fatalf("RevokeAllAppPasswords: %v", err)
		}
		mustImport(t, s, key)
		wantKey(t, s, key)
	})
	t.Run("InvalidKey", func(t *testing.T) {
		s := newStore(t)
		for _, bad := range [][]byte{nil, make([]byte, 16), make([]byte, 33)} {
			if err := s.ImportLookupKey(t.Context(), bad); err == nil {
				t.Errorf("ImportLookupKey of %d bytes succeeded", len(bad))
			}
		}
		mustImport(t, s, key)
		wantKey(t, s, key)
	})
}

func mustImport(t *testing.T, s KeyImporter, key []byte) {
	t.Helper()
	if err := s.ImportLookupKey(t.Context(), bytes.Clone(key)); err != nil {
		t.Fatalf("ImportLookupKey: %v", err)
	}
}

// wantKey fails unless s's lookup key is want.
func wantKey(t *testing.T, s store.Store, want []byte) {
	t.Helper()
	got, err := s.LookupKey(t.Context())
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("LookupKey = %x, want %x", got, want)
	}
}
