package smtp

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/proxy"
)

// The Attempt carries the device first-use binding compares: the EHLO
// name (an address literal is none), the TLS fingerprint (the same for one
// client over STARTTLS and implicit TLS) and the client's /24.
func TestAttemptDevice(t *testing.T) {
	cfg, pool := testCert(t)
	e := newEnv(t, nil, func(s *Server) { s.TLSConfig = cfg })
	tlsAddr := startPassgate(t, e.pg, true)

	c := dialText(t, e.addr)
	c.transactWant("EHLO [127.0.0.1]", 250, "")
	c.transactWant(plainIR("", appUser, "wrong"), 535, "")
	if d := e.auth.lastAttempt(t).Device; d.Client != "" || d.TLS != "" || d.Network.String() != "127.0.0.0/24" {
		t.Errorf("address literal, no TLS: device %+v", d)
	}

	bc := &badConn{textConn: dialText(t, e.addr), pool: pool}
	bc.transactWant("EHLO Laptop.Example.org", 250, "")
	bc.startTLS()
	bc.transactWant("EHLO Laptop.Example.org", 250, "")
	bc.transactWant(plainIR("", appUser, "wrong"), 535, "")
	starttls := e.auth.lastAttempt(t).Device

	tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	gc := gosmtp.NewClient(tc)
	if err := gc.Hello("laptop.example.org"); err != nil {
		t.Fatal(err)
	}
	gc.Auth(sasl.NewPlainClient("", appUser, "wrong"))
	implicit := e.auth.lastAttempt(t).Device
	if starttls.Client != "laptop.example.org" || !strings.HasPrefix(starttls.TLS, "t13") || starttls != implicit {
		t.Errorf("STARTTLS device %+v, implicit TLS %+v: want laptop.example.org and one fingerprint", starttls, implicit)
	}
}

// A right secret from another device under the block policy gets 535
// 5.7.8 with a text naming the portal, never the secret.
func TestDeviceRefusedReply(t *testing.T) {
	msg := proxy.DeviceRefusedText("https://portal.example.org/")
	e := newEnv(t, nil, func(s *Server) { s.DeviceMessage = msg })
	c := dialText(t, e.addr)
	c.transactWant("EHLO client.test", 250, "")
	c.transactWant(plainIR("", deviceUser, appSecret), 535, "5.7.8 "+msg)
	c.transactWant("MAIL FROM:<"+deviceUser+">", 530, "5.7.0 Authentication required")
	if logs := e.logs.String(); !strings.Contains(logs, "result=device-refused") || strings.Contains(logs, appSecret) {
		t.Errorf("logs:\n%s", logs)
	}
}
