package redis_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/redis"
)

// sentinelSet is a master, its replica and a Sentinel watching them.
type sentinelSet struct {
	master, replica, sentinel *testredis.Server
}

// startSentinelSet starts the set and waits until the Sentinel knows the
// replica (it can fail over only then).
func startSentinelSet(t *testing.T) sentinelSet {
	t.Helper()
	var set sentinelSet
	set.master = testredis.Start(t)
	set.replica = testredis.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(set.master.Port))
	master := rawClient(t, set.master.Addr())
	eventually(t, "replica connected", func() error {
		info, err := master.Info(t.Context(), "replication").Result()
		if err == nil && !strings.Contains(info, "connected_slaves:1") {
			err = errors.New("no replica yet")
		}
		return err
	})
	set.sentinel = testredis.StartSentinel(t, set.master.Port)
	sentinel := rawClient(t, set.sentinel.Addr())
	eventually(t, "Sentinel knows the replica", func() error {
		replicas, err := sentinel.Do(t.Context(), "sentinel", "replicas", "pg").Slice()
		if err == nil && len(replicas) != 1 {
			err = errors.New("no replica known yet")
		}
		return err
	})
	return set
}

func TestConformanceSentinel(t *testing.T) {
	set := startSentinelSet(t)
	conformance(t, func(*testing.T) redis.Options {
		return redis.Options{Addrs: []string{set.sentinel.Addr()}, MasterName: "pg", KeyPrefix: uniquePrefix()}
	}, nil)
}

// TestSentinelFailover promotes the replica: after a few failed calls at
// most, the same Store writes to the new master and finds what it wrote
// before the failover, and a subscription made before it carries on.
func TestSentinelFailover(t *testing.T) {
	set := startSentinelSet(t)
	s := open(t, redis.Options{Addrs: []string{set.sentinel.Addr()}, MasterName: "pg"})
	events, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	setup(t, s, "a", "b")
	master := rawClient(t, set.master.Addr())
	if n, err := master.Do(t.Context(), "wait", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}

	sentinel := rawClient(t, set.sentinel.Addr())
	if err := sentinel.Do(t.Context(), "sentinel", "failover", "pg").Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	replica := rawClient(t, set.replica.Addr())
	eventually(t, "replica promoted", func() error {
		role, err := replica.Do(t.Context(), "role").Slice()
		if err == nil && role[0] != "master" {
			err = errors.New("still a replica")
		}
		return err
	})
	// Until the old master is demoted, a client that has not yet heard of
	// the switch can still write there (Sentinel's split-brain window); the
	// Store must move to the new master by itself.
	failures, attempts := 0, 0
	eventually(t, "writes reach the new master", func() error {
		attempts++
		id := fmt.Sprintf("c%d", attempts)
		if err := s.CreateAppPassword(t.Context(), appPass("alice", id)); err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("CreateAppPassword during failover: %v, want ErrUnavailable", err)
			}
			failures++
			return err
		}
		ok, err := replica.HExists(t.Context(), "passgate:{u:alice}:apppass", id).Result()
		if err == nil && !ok {
			err = errors.New("written to the old master")
		}
		return err
	})
	t.Logf("after the promotion: %d writes, %d failed with ErrUnavailable", attempts, failures)
	if err := verifyPath(t.Context(), s, "a"); err != nil {
		t.Fatalf("app password written before the failover: %v", err)
	}
	// The subscription made before the failover moves to the new master
	// and says that events may have been lost meanwhile. The move may
	// still be under way when the revocation is published (it can first
	// land on the old master, not yet demoted, and move again): then the
	// revocation's event may be lost, but never silently: an EventsLost
	// must follow it, so that subscribers reconcile.
	var lost bool
	for !lost { // the marker of the first move, before the revocation
		lost = receive(t, events).Kind == store.EventsLost
	}
	if err := s.RevokeAppPassword(t.Context(), "alice", "b"); err != nil {
		t.Fatal(err)
	}
	for {
		switch ev := receive(t, events); {
		case ev.AppPasswordID == "b":
			return
		case ev.Kind == store.EventsLost:
			t.Logf("the revocation's event was lost in a second move, and said so")
			return
		}
	}
}
