package redis_test

import (
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store/redis"
	"github.com/passgate/passgate/store/storetest"
)

func TestImportLookupKey(t *testing.T) {
	t.Run("Miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		storetest.RunImportLookupKey(t, opener(func(*testing.T) redis.Options {
			return redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: uniquePrefix()}
		}))
	})
	t.Run("Server", func(t *testing.T) {
		srv := testredis.Start(t)
		storetest.RunImportLookupKey(t, opener(func(*testing.T) redis.Options {
			return redis.Options{URL: "redis://" + srv.Addr(), KeyPrefix: uniquePrefix()}
		}))
	})
	t.Run("Cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starting a cluster is slow")
		}
		addrs := testredis.StartCluster(t, 3)
		storetest.RunImportLookupKey(t, opener(func(*testing.T) redis.Options {
			return redis.Options{Addrs: addrs, KeyPrefix: uniquePrefix()}
		}))
	})
}
