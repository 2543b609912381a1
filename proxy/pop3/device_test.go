package pop3

import (
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy"
)

// A right secret from another device under the block policy gets -ERR
// [AUTH] (RFC 3206: retrying will not help) naming the portal; the
// Attempt carried the client's TLS fingerprint and network.
func TestDeviceRefused(t *testing.T) {
	msg := proxy.DeviceRefusedText("https://portal.example.org/")
	e := newEnv(t, cleartext, func(s *Server) { s.DeviceMessage = msg })
	c := e.dial(t)
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+lt.DeviceUser+"\x00"+lt.AppSecret)); r != "-ERR [AUTH] "+msg {
		t.Fatalf("device refused: %q", r)
	}
	a := e.auth.Attempts()
	if d := a[len(a)-1].Device; d.Network.String() != "127.0.0.0/24" || d.TLS != "" {
		t.Errorf("cleartext attempt's device %+v", d)
	}
}
