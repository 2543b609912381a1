package dovecotauth

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory"
)

// fakeAuth serves one scripted auth-client connection: the handshake, then
// for each AUTH the reply made by answer from the request's ID.
func fakeAuth(t *testing.T, handshake string, answer func(id string) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte(handshake))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
					if f[0] == "AUTH" && len(f) > 1 {
						c.Write([]byte(answer(f[1])))
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

const handshake = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n"

// TestReplies checks the mapping of replies Dovecot sends but the test
// Dovecot cannot be made to send (temporary failures, expiry), and that
// nothing but a well-formed OK for this request's ID is a success.
func TestReplies(t *testing.T) {
	tests := []struct {
		name      string
		handshake string
		reply     func(id string) string
		want      error // nil: success
	}{
		{"OK", handshake, func(id string) string { return "OK\t" + id + "\tuser=alice@example.org\n" }, nil},
		{"OK with nologin", handshake, func(id string) string { return "OK\t" + id + "\tuser=alice@example.org\tnologin\treason=x\n" }, directory.ErrDisabled},
		{"FAIL", handshake, func(id string) string { return "FAIL\t" + id + "\tuser=alice@example.org\n" }, directory.ErrBadPassword},
		{"FAIL temp_fail", handshake, func(id string) string { return "FAIL\t" + id + "\tcode=temp_fail\n" }, directory.ErrUnavailable},
		{"FAIL temp (old)", handshake, func(id string) string { return "FAIL\t" + id + "\ttemp\n" }, directory.ErrUnavailable},
		{"FAIL user_disabled", handshake, func(id string) string { return "FAIL\t" + id + "\tcode=user_disabled\n" }, directory.ErrDisabled},
		{"FAIL pass_expired", handshake, func(id string) string { return "FAIL\t" + id + "\tcode=pass_expired\n" }, directory.ErrBadPassword},
		{"OK for another request", handshake, func(id string) string { return "OK\t" + id + "9\tuser=alice@example.org\n" }, directory.ErrUnavailable},
		{"CONT", handshake, func(id string) string { return "CONT\t" + id + "\t\n" }, directory.ErrUnavailable},
		{"garbage", handshake, func(id string) string { return "* OK IMAP4rev1\n" }, directory.ErrUnavailable},
		{"line too long", handshake, func(id string) string { return "OK\t" + id + "\t" + strings.Repeat("x", maxLine) + "\n" }, directory.ErrUnavailable},
		{"version 2", strings.Replace(handshake, "VERSION\t1", "VERSION\t2", 1), func(id string) string { return "OK\t" + id + "\n" }, directory.ErrUnavailable},
		{"no PLAIN", strings.Replace(handshake, "PLAIN", "SCRAM-SHA-256", 1), func(id string) string { return "OK\t" + id + "\n" }, directory.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Config{AuthSocket: fakeAuth(t, tt.handshake, tt.reply), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			e, err := d.Authenticate(context.Background(), "alice@example.org", "secret-pw")
			if tt.want == nil {
				if err != nil || e.Username != "alice@example.org" {
					t.Fatalf("Authenticate = %+v, %v; want success", e, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate = %+v, %v; want %v", e, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Fatalf("the error %q contains the password", err)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"plain", "a\tb", "a\nb\rc", "\x00\x01", "user\x01tname"} {
		e := escape(s)
		if strings.ContainsAny(e, "\t\n\r\x00") {
			t.Errorf("escape(%q) = %q still holds a separator", s, e)
		}
		if got := unescape(e); got != s {
			t.Errorf("unescape(escape(%q)) = %q", s, got)
		}
	}
	if got := unescape("a\x01xb"); got != "axb" {
		t.Errorf(`unescape("a\001xb") = %q, want "axb"`, got)
	}
}
