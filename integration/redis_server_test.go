package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testredis"
)

// useRedis points pg's configuration (serve not started yet) at r, adding
// limits lines to [limits].
func useRedis(t testing.TB, pg *Passgate, r *testredis.Server, limits ...string) {
	t.Helper()
	useRedisURL(t, pg, r.URL(), limits...)
}

// useRedisURL is useRedis with the Redis at url.
func useRedisURL(t testing.TB, pg *Passgate, url string, limits ...string) {
	t.Helper()
	b, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, anchor := range []string{"\n[store]\n", "\n[limits]\n"} {
		if strings.Count(conf, anchor) != 1 {
			t.Fatalf("passgate config: want one %q to edit", strings.TrimSpace(anchor))
		}
	}
	conf = strings.Replace(conf, "\n[store]\n", "\n[store]\nbackend = \"redis\"\n", 1)
	conf = strings.Replace(conf, "\n[limits]\n", fmt.Sprintf("\n[store.redis]\nurl = %q\n\n[limits]\n%s",
		url, strings.Join(append(limits, ""), "\n")), 1)
	if err := os.WriteFile(pg.ConfFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startRedisPair starts two passgate instances in front of d that share r,
// each with its own configuration, ports and control socket.
func startRedisPair(t testing.TB, d *Dovecot, r *testredis.Server, limits ...string) (a, b *Passgate) {
	t.Helper()
	a, b = newPassgate(t, d, passgateOpts{}), newPassgate(t, d, passgateOpts{})
	for _, pg := range []*Passgate{a, b} {
		useRedis(t, pg, r, limits...)
		pg.serve(t)
	}
	return a, b
}
