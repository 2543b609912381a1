package storetest

import (
	"bytes"
	"sync"
	"testing"
)

func testLookupKey(t *testing.T, o Opener) {
	t.Run("Stable", func(t *testing.T) {
		s := o.New(t)
		k1, err := s.LookupKey(t.Context())
		if err != nil {
			t.Fatalf("LookupKey: %v", err)
		}
		if len(k1) != 32 {
			t.Fatalf("LookupKey returned %d bytes, want 32", len(k1))
		}
		if bytes.Equal(k1, make([]byte, 32)) {
			t.Fatal("LookupKey returned all zeros")
		}
		keep := bytes.Clone(k1)
		clear(k1) // the caller's copy is its own
		k2, err := s.LookupKey(t.Context())
		if err != nil {
			t.Fatalf("LookupKey (second call): %v", err)
		}
		if !bytes.Equal(k2, keep) {
			t.Fatal("LookupKey changed between calls (or shares its buffer with callers)")
		}
		k3, err := o.New(t).LookupKey(t.Context())
		if err != nil {
			t.Fatalf("LookupKey (other store): %v", err)
		}
		if bytes.Equal(k3, keep) {
			t.Fatal("two new stores have the same lookup key")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := o.New(t)
		const callers = 8
		keys := make([][]byte, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				k, err := s.LookupKey(t.Context())
				if err != nil {
					t.Errorf("LookupKey: %v", err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for i, k := range keys {
			if len(k) != 32 || !bytes.Equal(k, keys[0]) {
				t.Fatalf("caller %d got key %x, caller 0 got %x", i, k, keys[0])
			}
		}
	})
}
