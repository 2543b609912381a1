package imap

import (
	"strings"
	"testing"

	"github.com/passgate/passgate/proxy"
)

// The Attempt carries the device first-use binding compares: the IMAP ID
// name (not its version), the TLS fingerprint (the same for one client
// over implicit TLS and STARTTLS) and the client's /24.
func TestAttemptDevice(t *testing.T) {
	e := newEnv(t, withTLS)
	login := func(c *client) {
		t.Helper()
		c.expectTagged("i", `ID ("name" "Thunderbird" "version" "128.3.1")`, "i OK ")
		c.expectTagged("a", "LOGIN alice@example.org "+appSecret, "a OK ")
		e.peer(t).conn.Close()
	}
	login(e.greetedTLS())
	implicit := e.auth.last(t).Device
	c := e.greeted()
	c.startTLS()
	login(c)
	starttls := e.auth.last(t).Device
	if implicit.Client != "Thunderbird" || implicit.Network.String() != "127.0.0.0/24" {
		t.Errorf("device %+v, want client Thunderbird from 127.0.0.0/24", implicit)
	}
	if !strings.HasPrefix(implicit.TLS, "t13d") || len(implicit.TLS) != len("t13d1516h2_123456789abc_123456789abc") {
		t.Errorf("TLS fingerprint %q is not in the shape t13d1516h2_<12 hex>_<12 hex>", implicit.TLS)
	}
	if implicit != starttls {
		t.Errorf("one client, two fingerprints: implicit TLS %+v, STARTTLS %+v", implicit, starttls)
	}
	t.Logf("Go crypto/tls client: %s", implicit.TLS)
}

// A right secret from another device under the block policy gets an
// [ALERT] naming the portal, never the secret, and counts as a failure.
func TestDeviceRefusedAlert(t *testing.T) {
	msg := proxy.DeviceRefusedText("https://portal.example.org/")
	e := newEnv(t, cleartext, func(s *Server) { s.DeviceMessage = msg })
	c := e.greeted()
	got := c.expectTagged("a", "LOGIN device@example.org "+appSecret, "a NO ")
	want := "a NO [ALERT] " + msg
	if got[len(got)-1] != want {
		t.Fatalf("reply %q, want %q", got[len(got)-1], want)
	}
	if !strings.Contains(want, "https://portal.example.org/") || strings.Contains(e.logs.String(), appSecret) {
		t.Errorf("the alert does not name the portal, or the log holds the secret")
	}
	if !strings.Contains(e.logs.String(), "device-refused") {
		t.Errorf("log does not say device-refused:\n%s", e.logs.String())
	}
}
