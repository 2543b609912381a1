package sieve

import (
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/proxy"
)

// A right secret from another device under the block policy gets NO
// naming the portal.
func TestDeviceRefused(t *testing.T) {
	msg := proxy.DeviceRefusedText("https://portal.example.org/")
	e := newEnv(t, cleartext, func(s *Server) { s.DeviceMessage = msg })
	c := e.dial(t, "PLAIN LOGIN")
	if r := c.Cmd(`AUTHENTICATE "PLAIN" "` + plain("", lt.DeviceUser, lt.AppSecret) + `"`); r != `NO "`+msg+`"` {
		t.Fatalf("device refused: %q", r)
	}
}
