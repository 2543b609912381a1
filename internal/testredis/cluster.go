package testredis

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/passgate/passgate/internal/testtool"
)

// StartCluster starts n redis-server processes in cluster mode, joins them
// and spreads the 16384 slots over them; it returns their addresses once
// every node sees the whole cluster.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var clients []*goredis.Client
	for i := range n {
		bus, err := testtool.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s := StartArgs(t, func(port int) []string {
			return []string{"--port", strconv.Itoa(port),
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
				"--cluster-node-timeout", "5000"}
		})
		addrs = append(addrs, s.Addr())
		c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		if i > 0 {
			if err := clients[0].Do(t.Context(), "cluster", "meet", "127.0.0.1", s.Port, bus).Err(); err != nil {
				t.Fatalf("CLUSTER MEET: %v", err)
			}
		}
	}
	for i, c := range clients {
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(t.Context(), "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !clusterReady(t, clients) {
		if time.Now().After(deadline) {
			t.Fatal("cluster not ready within 30s")
		}
		<-tick.C
	}
	return addrs
}

// clusterReady reports whether every node says the cluster is ok and knows
// every node's slots.
func clusterReady(t testing.TB, clients []*goredis.Client) bool {
	for _, c := range clients {
		info, err := c.ClusterInfo(t.Context()).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
		slots, err := c.ClusterSlots(t.Context()).Result()
		if err != nil || len(slots) != len(clients) {
			return false
		}
	}
	return true
}

// StartSentinel starts a Sentinel that monitors the master at masterPort
// under the name "pg" with a quorum of 1 (one Sentinel decides alone).
func StartSentinel(t testing.TB, masterPort int) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor pg 127.0.0.1 %d 1\nsentinel down-after-milliseconds pg 2000\n", masterPort)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, &Server{
		Dir:   dir,
		first: []string{conf, "--sentinel"},
		args:  func(port int) []string { return []string{"--port", strconv.Itoa(port)} },
		ready: "+monitor master pg",
	})
}
