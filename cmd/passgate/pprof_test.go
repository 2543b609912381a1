package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testtool"
)

func TestPprofLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:6060", "localhost:0", "nonsense"} {
		if stop, err := startPprof(addr); err == nil {
			stop()
			t.Errorf("startPprof(%q) served", addr)
		}
	}
}

func TestPprofServesProfiles(t *testing.T) {
	p, err := testtool.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(p)
	stop, err := startPprof("127.0.0.1:" + port)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://127.0.0.1:" + port + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Errorf("index: %d %.200s", resp.StatusCode, body)
	}
}
