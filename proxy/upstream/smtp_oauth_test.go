package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
)

// fixedToken is a Tokens that always hands out tok and counts what was
// invalidated.
type fixedToken struct {
	tok         string
	invalidated int
}

func (f *fixedToken) Token(context.Context, string) (string, error) { return f.tok, nil }
func (f *fixedToken) Invalidate(string, string)                     { f.invalidated++ }

// wantOAuthMessage is the SASL message of mode for alice at addr, in the
// formats Google and Microsoft publish (XOAUTH2) and RFC 7628 (OAUTHBEARER).
func wantOAuthMessage(mode Mode, addr, tok string) string {
	if mode == ModeXOAuth2 {
		return "user=alice\x01auth=Bearer " + tok + "\x01\x01"
	}
	host, port, _ := net.SplitHostPort(addr)
	return "n,a=alice,\x01host=" + host + "\x01port=" + port + "\x01auth=Bearer " + tok + "\x01\x01"
}

// TestSMTPOAuthInitialResponseFitsTheLine: the AUTH command line is bound
// by SMTP's 512 octets (RFC 4954 §4, RFC 5321 §4.5.3.1.4): a token that
// fits goes as the initial response, a longer one (every JWT Microsoft and
// Dovecot take) after the server's empty 334 challenge. Dovecot 2.3's
// submission-login answers a longer AUTH line "500 5.5.2 Line too long".
func TestSMTPOAuthInitialResponseFitsTheLine(t *testing.T) {
	for _, mode := range []Mode{ModeXOAuth2, ModeOAuthBearer} {
		for _, size := range []int{40, 1500} {
			t.Run(fmt.Sprintf("%s/token=%d", mode, size), func(t *testing.T) {
				t.Parallel()
				tok := strings.Repeat("t", size)
				mech := strings.ToUpper(string(mode))
				addr := serve(t, false, func(s *script) {
					greetEHLO(s, ehloAuth("PLAIN "+mech))
					msg := base64.StdEncoding.EncodeToString([]byte(wantOAuthMessage(mode, s.conn.LocalAddr().String(), tok)))
					if line := "AUTH " + mech + " " + msg; len(line)+2 <= 512 {
						s.expect(`AUTH ` + mech + ` ` + regexp.QuoteMeta(msg))
					} else {
						s.expect(`AUTH ` + mech)
						s.send("334 ")
						s.expect(regexp.QuoteMeta(msg))
					}
					s.send("235 2.7.0 Logged in.")
					s.expect(`QUIT`)
					s.send("221 2.0.0 Bye")
				})
				u := &SMTP{Address: addr, Mode: mode, Tokens: &fixedToken{tok: tok}}
				c, err := u.Login(context.Background(), alice)
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				c.Quit(scriptDeadline)
			})
		}
	}
}

// TestSMTPOAuthErrorChallenge: the server's error challenge is answered as
// the mechanism requires (XOAUTH2: an empty line; OAUTHBEARER: %x01,
// RFC 7628 §3.2.3) and a missing permission is a refusal an admin can act
// on, without a retry and without the token in the error.
func TestSMTPOAuthErrorChallenge(t *testing.T) {
	challenge := base64.StdEncoding.EncodeToString([]byte(`{"status":"insufficient_scope","scope":"https://outlook.office365.com/SMTP.Send"}`))
	for mode, answer := range map[Mode]string{ModeXOAuth2: "", ModeOAuthBearer: "AQ=="} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			tok := strings.Repeat("j", 1200)
			mech := strings.ToUpper(string(mode))
			addr := serve(t, false, func(s *script) {
				greetEHLO(s, ehloAuth(mech))
				s.expect(`AUTH ` + mech)
				s.send("334 ")
				s.expect(`\S+`)
				s.send("334 " + challenge)
				s.expect(regexp.QuoteMeta(answer))
				s.send("535 5.7.8 Authentication failed")
				// go-smtp's Client.Auth sends "*" after any failure reply,
				// even a final one; Dovecot answers it as an unknown command.
				s.expect(`\*`)
				s.send("500 5.5.2 Unknown command")
				s.expectEOF()
			})
			tokens := &fixedToken{tok: tok}
			u := &SMTP{Address: addr, Mode: mode, Tokens: tokens}
			_, err := u.Login(context.Background(), alice)
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(re.Action, "insufficient_scope") {
				t.Fatalf("Login: %v, want a *RefusedError naming insufficient_scope", err)
			}
			if strings.Contains(err.Error(), tok) || strings.Contains(re.Action, tok) {
				t.Error("the error holds the token")
			}
			if tokens.invalidated != 0 {
				t.Errorf("the token was invalidated %d times for a missing permission", tokens.invalidated)
			}
		})
	}
}
