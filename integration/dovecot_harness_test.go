package integration

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/passgate/passgate/internal/testcert"
)

// These tests talk to Dovecot directly, without passgate: they prove that the
// peer is set up the way passgate uses it.
//
// Dovecot delays every login from an address that recently failed one (its
// auth penalty, up to 15 s, keyed on the client address). Tests that fail a
// login on purpose therefore claim an address of their own from TEST-NET-1
// with ID x-originating-ip, so that 127.0.0.1, which passgate forwards for
// its own clients, is never penalised.

func saslPlain(authzid, authcid, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + authcid + "\x00" + secret))
}

func TestDovecotLogins(t *testing.T) {
	d := sharedDovecot(t)
	user, password := d.newUser(t)
	d.deliver(t, user, testMessage(user, "harness check", "hello"))

	tests := []struct {
		name    string
		command string
		want    string // prefix of the tagged status
		exists  bool   // SELECT INBOX must show the delivered message
	}{
		{"master SASL PLAIN with authzid", "AUTHENTICATE PLAIN " + saslPlain(user, masterUser, masterSecret), "OK", true},
		{"master LOGIN with separator", "LOGIN " + quote(user+"*"+masterUser) + " " + quote(masterSecret), "OK", true},
		{"primary password LOGIN", "LOGIN " + quote(user) + " " + quote(password), "OK", true},
		{"primary password SASL PLAIN", "AUTHENTICATE PLAIN " + saslPlain("", user, password), "OK", true},
		{"master for unknown user", "AUTHENTICATE PLAIN " + saslPlain("nobody-here@example.org", masterUser, masterSecret), "NO [AUTHORIZATIONFAILED]", false},
		{"master LOGIN for unknown user", "LOGIN " + quote("nobody-here@example.org*"+masterUser) + " " + quote(masterSecret), "NO [AUTHORIZATIONFAILED]", false},
		{"wrong master secret", "AUTHENTICATE PLAIN " + saslPlain(user, masterUser, "wrong"), "NO [AUTHENTICATIONFAILED]", false},
		{"wrong primary password", "LOGIN " + quote(user) + " " + quote("wrong"), "NO [AUTHENTICATIONFAILED]", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, greeting := dialRaw(t, d.IMAPAddr)
			if !strings.HasPrefix(greeting, "* OK") {
				t.Fatalf("greeting %q", greeting)
			}
			c.forwardIP(fmt.Sprintf("192.0.2.%d", 10+i))
			status, _ := c.transact(tt.command)
			if !strings.HasPrefix(status, tt.want) {
				t.Fatalf("login: got %q, want %q", status, tt.want)
			}
			if !tt.exists {
				return
			}
			status, untagged := c.transact("SELECT INBOX")
			if !strings.HasPrefix(status, "OK") || !hasLine(untagged, "* 1 EXISTS") {
				t.Fatalf("SELECT INBOX of %s: %q %q, want the delivered message", user, status, untagged)
			}
		})
	}
}

// TestDovecotTrustsForwardedIP checks that Dovecot takes the client address
// from ID x-originating-ip (login_trusted_networks), as passgate sends it.
func TestDovecotTrustsForwardedIP(t *testing.T) {
	d := sharedDovecot(t)
	user, _ := d.newUser(t)
	c, _ := dialRaw(t, d.IMAPAddr)
	c.forwardIP("192.0.2.77")
	if status, _ := c.transact("AUTHENTICATE PLAIN " + saslPlain(user, masterUser, masterSecret)); !strings.HasPrefix(status, "OK") {
		t.Fatalf("login: %q", status)
	}
	c.transact("LOGOUT")
	want := "user=<" + user + ">"
	for _, line := range strings.Split(d.LogWhen("Login: "+want), "\n") {
		if strings.Contains(line, "Login: "+want) {
			if !strings.Contains(line, "rip=192.0.2.77") {
				t.Fatalf("login logged without the forwarded address: %s", line)
			}
			return
		}
	}
	t.Fatalf("no login line for %s in the dovecot log", want)
}

func TestDovecotTLS(t *testing.T) {
	d := sharedDovecot(t)
	cfg := &tls.Config{RootCAs: testcert.Pool(t, d.CertFile), ServerName: "localhost"}
	login := "LOGIN " + quote(presetUsers[0]) + " " + quote(primaryPassword(presetUsers[0]))

	t.Run("STARTTLS", func(t *testing.T) {
		c, _ := dialRaw(t, d.IMAPAddr)
		c.startTLS(cfg)
		if status, _ := c.transact(login); !strings.HasPrefix(status, "OK") {
			t.Fatalf("login after STARTTLS: %q", status)
		}
	})
	t.Run("implicit TLS", func(t *testing.T) {
		c, greeting := dialRawTLS(t, d.IMAPSAddr, cfg)
		if !strings.HasPrefix(greeting, "* OK") {
			t.Fatalf("greeting %q", greeting)
		}
		if status, _ := c.transact(login); !strings.HasPrefix(status, "OK") {
			t.Fatalf("login over TLS: %q", status)
		}
	})
}

// TestDovecotStartStop checks the harness's own lifecycle: a private Dovecot
// starts, delivers, and its stop frees the port.
func TestDovecotStartStop(t *testing.T) {
	d := startDovecot(t)
	d.deliver(t, presetUsers[1], testMessage(presetUsers[1], "private instance", "hi"))
	c, _ := dialRaw(t, d.IMAPAddr)
	if status, _ := c.transact("LOGIN " + quote(presetUsers[1]) + " " + quote(primaryPassword(presetUsers[1]))); !strings.HasPrefix(status, "OK") {
		t.Fatalf("login: %q", status)
	}
	if status, untagged := c.transact("EXAMINE INBOX"); !strings.HasPrefix(status, "OK") || !hasLine(untagged, "* 1 EXISTS") {
		t.Fatalf("EXAMINE INBOX: %q %q", status, untagged)
	}
	c.transact("LOGOUT")
	d.stop()
	if conn, err := net.DialTimeout("tcp", d.IMAPAddr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts after stop", d.IMAPAddr)
	}
}

// TestDovecotSubmission checks the submission service that passgate's SMTP
// side will log in to: STARTTLS, then AUTH PLAIN as the master user with the
// target user as authzid.
func TestDovecotSubmission(t *testing.T) {
	d := sharedDovecot(t)
	user, _ := d.newUser(t)
	c, err := smtp.DialStartTLS(d.SubmitAddr, &tls.Config{RootCAs: testcert.Pool(t, d.CertFile), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial submission with STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient(user, masterUser, masterSecret)); err != nil {
		t.Fatalf("AUTH PLAIN as master user for %s: %v", user, err)
	}
}
