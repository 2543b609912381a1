package redis_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/redis"
)

// BenchmarkVerifyPath measures what a login costs the store: one
// FindAppPassword and one TouchAppPassword, on bbolt, miniredis and a real
// redis-server, from one goroutine and from many (RunParallel).
func BenchmarkVerifyPath(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"bolt", func(b *testing.B) store.Store {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "passgate.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		}},
		{"miniredis", func(b *testing.B) store.Store {
			return open(b, redis.Options{Addrs: []string{miniredis.RunT(b).Addr()}})
		}},
		{"redis-server", func(b *testing.B) store.Store {
			return open(b, redis.Options{Addrs: []string{testredis.Start(b).Addr()}})
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := context.Background()
			if err := s.CreateAccount(ctx, store.Account{Username: "alice"}); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateAppPassword(ctx, appPass("alice", "a")); err != nil {
				b.Fatal(err)
			}
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if err := verifyPath(ctx, s, "a"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := verifyPath(ctx, s, "a"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
