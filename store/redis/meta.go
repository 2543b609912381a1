package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
)

// lookupKeySize is the size of the lookup key in bytes.
const lookupKeySize = 32

// LookupKey returns the installation's random 32-byte key for lookup tags,
// creating it on first use with one script (GET, else SET), so every
// instance on the same Redis and key prefix gets the same key. It is cached
// after the first success; callers get a copy.
func (s *Store) LookupKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key != nil {
		return bytes.Clone(s.key), nil
	}
	var key []byte
	err := s.do(ctx, "lookup key", func(ctx context.Context) error {
		fresh := make([]byte, lookupKeySize)
		rand.Read(fresh) // never fails (crypto/rand, Go 1.24+)
		v, err := scriptLookupKey.Run(ctx, s.rdb, []string{s.lookupKeyKey()}, fresh).Text()
		if err != nil {
			return err
		}
		if len(v) != lookupKeySize {
			return fmt.Errorf("stored lookup key has %d bytes, want %d", len(v), lookupKeySize)
		}
		key = []byte(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.key = key
	return bytes.Clone(key), nil
}
