package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// TestDemoDefaultPortTaken: a default address whose port is taken is
// replaced by a free one (and said so); the same address given on the
// command line is an error naming the flag.
func TestDemoDefaultPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()

	fs, _ := newFlags("demo")
	portal := fs.String("listen-portal", busy, "")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	addrs := []flagAddr{{"--listen-portal", portal}}
	if err := freeDefaults(env{stderr: &stderr}, fs, addrs); err != nil {
		t.Fatal(err)
	}
	if err := fixedPorts(addrs); err != nil {
		t.Fatal(err)
	}
	if *portal == busy || !strings.HasPrefix(*portal, "127.0.0.1:") {
		t.Errorf("portal address %q, want another port than the taken %s", *portal, busy)
	}
	ln, err := net.Listen("tcp", *portal)
	if err != nil {
		t.Errorf("the picked address %s is not free: %v", *portal, err)
	} else {
		ln.Close()
	}
	if !strings.Contains(stderr.String(), busy+" is taken") {
		t.Errorf("stderr %q does not say that %s is taken", stderr.String(), busy)
	}

	_, _, err = cli(t, "", "demo", "--listen-portal", busy)
	if err == nil || !strings.Contains(err.Error(), "--listen-portal "+busy) {
		t.Errorf("demo --listen-portal %s (taken): %v, want an error naming the flag", busy, err)
	}
}
