package imap

import (
	"encoding/base64"
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// plainIR is a base64 SASL PLAIN response (RFC 4616).
func plainIR(authzid, authcid, secret string) string {
	return b64(authzid + "\x00" + authcid + "\x00" + secret)
}

func deadline() time.Time { return time.Now().Add(ioTimeout) }

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name     string
		exchange func(c *client) // up to, not including, the tagged reply
		want     string          // the tagged reply
		attempt  *authn.Attempt  // the Attempt Verify must have seen; nil: not called
	}{
		{"PLAIN with SASL-IR", func(c *client) {
			c.send("a AUTHENTICATE PLAIN " + plainIR("", appUser, appSecret) + "\r\n")
		}, okAlice, &authn.Attempt{Username: appUser, Secret: appSecret, Mechanism: "PLAIN"}},
		{"PLAIN with a continuation", func(c *client) {
			c.send("a authenticate plain\r\n")
			c.expect("+ ")
			c.send(plainIR("", appUser, appSecret) + "\r\n")
		}, okAlice, &authn.Attempt{Username: appUser, Secret: appSecret, Mechanism: "PLAIN"}},
		{"PLAIN with authzid equal to the user", func(c *client) {
			c.send("a AUTHENTICATE PLAIN " + plainIR("Alice@Example.org", appUser, appSecret) + "\r\n")
		}, okAlice, &authn.Attempt{Username: appUser, Secret: appSecret, Mechanism: "PLAIN"}},
		{"PLAIN with a foreign authzid", func(c *client) {
			c.send("a AUTHENTICATE PLAIN " + plainIR("bob@example.org", appUser, appSecret) + "\r\n")
		}, "a NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed", nil},
		{"PLAIN with an empty initial response", func(c *client) {
			c.send("a AUTHENTICATE PLAIN =\r\n")
		}, "a BAD Malformed PLAIN response", nil},
		{"PLAIN canceled", func(c *client) {
			c.send("a AUTHENTICATE PLAIN\r\n")
			c.expect("+ ")
			c.send("*\r\n")
		}, "a BAD Authentication canceled", nil},
		{"PLAIN with bad base64", func(c *client) {
			c.send("a AUTHENTICATE PLAIN\r\n")
			c.expect("+ ")
			c.send("not base64!\r\n")
		}, "a BAD Invalid base64", nil},
		{"PLAIN with bad base64 initial response", func(c *client) {
			c.send("a AUTHENTICATE PLAIN AAA\r\n")
		}, "a BAD Invalid base64", nil},
		{"PLAIN with two fields", func(c *client) {
			c.send("a AUTHENTICATE PLAIN " + b64(appUser+"\x00"+appSecret) + "\r\n")
		}, "a BAD Malformed PLAIN response", nil},
		{"PLAIN with a wrong secret", func(c *client) {
			c.send("a AUTHENTICATE PLAIN " + plainIR("", appUser, "nope") + "\r\n")
		}, "a NO [AUTHENTICATIONFAILED] Invalid credentials", &authn.Attempt{Username: appUser, Secret: "nope", Mechanism: "PLAIN"}},
		{"LOGIN mechanism", func(c *client) {
			c.send("a AUTHENTICATE LOGIN\r\n")
			c.expect("+ VXNlcm5hbWU6")
			c.send(b64(appUser) + "\r\n")
			c.expect("+ UGFzc3dvcmQ6")
			c.send(b64(appSecret) + "\r\n")
		}, okAlice, &authn.Attempt{Username: appUser, Secret: appSecret, Mechanism: "LOGIN"}},
		{"LOGIN mechanism with the user as initial response", func(c *client) {
			c.send("a AUTHENTICATE LOGIN " + b64(appUser) + "\r\n")
			c.expect("+ UGFzc3dvcmQ6")
			c.send(b64(appSecret) + "\r\n")
		}, okAlice, &authn.Attempt{Username: appUser, Secret: appSecret, Mechanism: "LOGIN"}},
		{"LOGIN mechanism canceled", func(c *client) {
			c.send("a AUTHENTICATE LOGIN\r\n")
			c.expect("+ VXNlcm5hbWU6")
			c.send(b64(appUser) + "\r\n")
			c.expect("+ UGFzc3dvcmQ6")
			c.send("*\r\n")
		}, "a BAD Authentication canceled", nil},
		{"LOGIN mechanism with bad base64", func(c *client) {
			c.send("a AUTHENTICATE LOGIN\r\n")
			c.expect("+ VXNlcm5hbWU6")
			c.send("@@@\r\n")
		}, "a BAD Invalid base64", nil},
		{"unsupported mechanism", func(c *client) {
			c.send("a AUTHENTICATE CRAM-MD5\r\n")
		}, "a NO Unsupported authentication mechanism", nil},
		{"no mechanism", func(c *client) {
			c.send("a AUTHENTICATE\r\n")
		}, "a BAD Missing argument", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cleartext)
			c := e.greeted()
			tt.exchange(c)
			if got := c.line(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			attempts := e.auth.all()
			if tt.attempt == nil {
				if len(attempts) != 0 {
					t.Errorf("Verify called with %+v", attempts)
				}
				// The connection is still in sync.
				c.expectTagged("n", "NOOP", "n OK ")
				return
			}
			want := *tt.attempt
			want.Protocol, want.RemoteIP = store.ScopeIMAP, loopback
			want.Device = store.Device{Network: netip.MustParsePrefix("127.0.0.0/24")} // no ID, no TLS
			if len(attempts) == 1 {
				want.SessionID = attempts[0].SessionID // random; guard_test.go checks it
			}
			if len(attempts) != 1 || attempts[0] != want {
				t.Errorf("attempts %+v, want %+v", attempts, want)
			}
			if tt.want == okAlice {
				peer := e.peer(t)
				c.send("b NOOP\r\n")
				peer.expect("b NOOP")
			}
		})
	}
}
