package smtp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store"
)

// recordAll is an Authenticator that refuses every login and passes each
// attempt on a channel.
type recordAll chan authn.Attempt

func (r recordAll) Verify(_ context.Context, a authn.Attempt) (authn.Decision, error) {
	r <- a
	return authn.Decision{Result: authn.BadSecret}, nil
}

// only returns the one attempt since the last call, if any.
func (r recordAll) only(t *testing.T) (authn.Attempt, bool) {
	t.Helper()
	switch len(r) {
	case 0:
		return authn.Attempt{}, false
	case 1:
		return <-r, true
	}
	t.Fatalf("%d attempts, want at most 1", len(r))
	return authn.Attempt{}, false
}

// fuzzClient is one connection to a cleartext server for a fuzz target,
// reused by input after input (a connection per input would exhaust the
// loopback's ephemeral ports within a minute); an input that fails drops
// it.
type fuzzClient struct {
	addr string
	auth recordAll
	c    *badConn
}

func newFuzzClient(f *testing.F) *fuzzClient {
	fc := &fuzzClient{auth: make(recordAll, 8)}
	srv := &Server{
		Auth:           fc.auth,
		Upstream:       &upstream.SMTP{Address: testtool.ClosedAddr(f), Mode: upstream.ModeMaster, MasterUser: masterUser, MasterSecret: masterSecret},
		AllowCleartext: true,
		Hostname:       "passgate.test",
		ReadTimeout:    ioTimeout,
		Limits:         proxy.Limits{MaxFailedLogins: 1 << 30, MaxPreauthCommands: 1 << 30},
		Logger:         discardLogger(),
	}
	fc.addr = startPassgate(f, srv, false)
	f.Cleanup(func() {
		if fc.c != nil {
			fc.c.c.Close()
		}
	})
	return fc
}

// conn returns the connection, greeted, for input t.
func (fc *fuzzClient) conn(t *testing.T) *badConn {
	t.Helper()
	if fc.c == nil {
		nc, err := net.DialTimeout("tcp", fc.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		fc.c = &badConn{textConn: &textConn{t: t, c: nc, tp: textproto.NewConn(nc)}}
		fc.c.expect(220)
		fc.c.transactWant("EHLO client.test", 250, "")
	}
	fc.c.t = t
	t.Cleanup(func() {
		if t.Failed() && fc.c != nil {
			fc.c.c.Close()
			fc.c = nil
		}
	})
	for len(fc.auth) > 0 { // left by a failed input
		<-fc.auth
	}
	return fc.c
}

// fuzzMaxLine keeps fuzz lines under go-smtp's line limit (2000 bytes);
// longer ones are the bad-input tests' business.
const fuzzMaxLine = 1900

// endFuzzConn checks that the connection is still usable.
func endFuzzConn(c *badConn) {
	c.transactWant("NOOP", 250, "")
}

// decodeLine is what go-smtp makes of a SASL response line (RFC 4954 §4:
// "=" is an empty response).
func decodeLine(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// irOK reports whether s survives as the initial response of "AUTH MECH s":
// go-smtp takes the second space-separated field.
func irOK(s string) bool {
	f := strings.Fields(s)
	return len(f) == 1 && f[0] == s
}

// FuzzSASLLoginServer runs the LOGIN mechanism (draft-murchison-sasl-login)
// with arbitrary user names and passwords, base64-encoded (raw false) or as
// raw response lines (raw true), with the user as an initial response or
// after the "Username:" prompt: first loginServer alone, then through
// go-smtp on a real connection. The Authenticator gets exactly the decoded
// bytes, once; a line that is not base64 gets 454 (go-smtp), "*" cancels
// with 501; the connection stays usable.
func FuzzSASLLoginServer(f *testing.F) {
	fc := newFuzzClient(f)
	f.Fuzz(func(t *testing.T, user, pass string, initial, raw bool) {
		checkLoginServer(t, user, pass, initial)

		userLine, passLine := base64.StdEncoding.EncodeToString([]byte(user)), base64.StdEncoding.EncodeToString([]byte(pass))
		if raw {
			userLine, passLine = firstLine(user), firstLine(pass)
		} else if userLine == "" {
			userLine = "=" // an empty initial response
		}
		if initial && !irOK(userLine) {
			initial = false // not one field: send it after the prompt
		}
		if len(userLine) > fuzzMaxLine || len(passLine) > fuzzMaxLine {
			return
		}
		wantUser, userErr := decodeLine(userLine)
		wantPass, passErr := decodeLine(passLine)

		c, auth := fc.conn(t), fc.auth
		if initial {
			c.sendRaw("AUTH LOGIN " + userLine + "\r\n")
		} else {
			c.transactWant("AUTH LOGIN", 334, b64("Username:"))
			c.sendRaw(userLine + "\r\n")
		}
		switch {
		case userLine == "*" && !initial:
			loginRefused(t, c, replyCancelled, auth)
			return
		case userErr != nil:
			loginRefused(t, c, replyBadBase64, auth)
			return
		}
		c.expectLine(replyPassPrompt)
		c.sendRaw(passLine + "\r\n")
		switch {
		case passLine == "*":
			loginRefused(t, c, replyCancelled, auth)
		case passErr != nil:
			loginRefused(t, c, replyBadBase64, auth)
		default:
			c.expectLine(replyBadCreds)
			a, called := auth.only(t)
			if !called || a.Username != string(wantUser) || a.Secret != string(wantPass) || a.Mechanism != "LOGIN" {
				t.Fatalf("Verify got %+v (called %v), want user %q secret %q", a, called, wantUser, wantPass)
			}
			endFuzzConn(c)
		}
	})
}

// checkLoginServer runs loginServer alone: prompts, then exactly one call
// of authenticate with the responses as given, then nothing more.
func checkLoginServer(t *testing.T, user, pass string, initial bool) {
	var calls [][2]string
	errRefused := errors.New("refused")
	s := newLoginServer(func(u, p string) error {
		calls = append(calls, [2]string{u, p})
		return errRefused
	})
	step := func(resp []byte, wantChallenge []byte, wantDone bool) error {
		t.Helper()
		ch, done, err := s.Next(resp)
		if !bytes.Equal(ch, wantChallenge) || done != wantDone {
			t.Fatalf("Next(%q) = %q, %v, %v; want %q, %v", resp, ch, done, err, wantChallenge, wantDone)
		}
		return err
	}
	if !initial {
		step(nil, loginUserPrompt, false)
	}
	step([]byte(user), loginPassPrompt, false)
	if err := step([]byte(pass), nil, true); err != errRefused {
		t.Fatalf("final Next error %v, want authenticate's", err)
	}
	if len(calls) != 1 || calls[0] != [2]string{user, pass} {
		t.Fatalf("authenticate calls %q, want one with %q %q", calls, user, pass)
	}
	if _, _, err := s.Next([]byte("more")); !errors.Is(err, sasl.ErrUnexpectedClientResponse) || len(calls) != 1 {
		t.Fatalf("Next after the end: %v, %d calls", err, len(calls))
	}
}

// loginRefused checks a refusal that must not reach the Authenticator, and
// that the connection is still usable.
func loginRefused(t *testing.T, c *badConn, want string, auth recordAll) {
	t.Helper()
	c.expectLine(want)
	if _, called := auth.only(t); called {
		t.Fatal("Verify was called")
	}
	endFuzzConn(c)
}

// FuzzSASLPlainServer checks the PLAIN decoder (RFC 4616 §2) on arbitrary
// messages: exactly two NULs decode into three fields that re-encode to the
// same bytes, anything else is refused; plainServer passes them to
// authenticate once; and through go-smtp, as an initial response or after
// the empty challenge, the Authenticator gets exactly authcid and passwd,
// or the client gets 501 5.5.2 (malformed) or 535 (foreign authzid)
// without a Verify.
func FuzzSASLPlainServer(f *testing.F) {
	fc := newFuzzClient(f)
	f.Fuzz(func(t *testing.T, msg []byte, continuation bool) {
		authzid, authcid, passwd, err := decodePlain(msg)
		twoNULs := bytes.Count(msg, []byte{0}) == 2
		switch {
		case err == nil && !twoNULs, err != nil && twoNULs:
			t.Fatalf("decodePlain(%q) error = %v with %d NULs", msg, err, bytes.Count(msg, []byte{0}))
		case err == nil && authzid+"\x00"+authcid+"\x00"+passwd != string(msg):
			t.Fatalf("decodePlain(%q) = %q %q %q: does not re-encode to the message", msg, authzid, authcid, passwd)
		}
		checkPlainServer(t, msg, err == nil)

		wire := base64.StdEncoding.EncodeToString(msg)
		if len(wire) > fuzzMaxLine {
			return
		}
		c, auth := fc.conn(t), fc.auth
		if continuation {
			c.transactWant("AUTH PLAIN", 334, "")
			c.sendRaw(wire + "\r\n")
		} else {
			if wire == "" {
				wire = "=" // an empty initial response
			}
			c.sendRaw("AUTH PLAIN " + wire + "\r\n")
		}
		switch {
		case err != nil:
			loginRefused(t, c, replyBadPlain, auth)
		case authzid != "" && !store.SameUsername(authzid, authcid):
			loginRefused(t, c, replyBadCreds, auth)
		default:
			c.expectLine(replyBadCreds)
			a, called := auth.only(t)
			if !called || a.Username != authcid || a.Secret != passwd || a.Mechanism != "PLAIN" {
				t.Fatalf("message %q: Verify got %+v (called %v)", msg, a, called)
			}
			endFuzzConn(c)
		}
	})
}

// checkPlainServer runs plainServer alone on msg.
func checkPlainServer(t *testing.T, msg []byte, wellFormed bool) {
	var calls int
	errRefused := errors.New("refused")
	s := newPlainServer(func(authzid, authcid, passwd string) error {
		calls++
		if authzid+"\x00"+authcid+"\x00"+passwd != string(msg) {
			t.Fatalf("authenticate(%q, %q, %q) for %q", authzid, authcid, passwd, msg)
		}
		return errRefused
	})
	if msg == nil {
		msg = []byte{} // nil asks for the challenge
	}
	_, done, err := s.Next(msg)
	switch {
	case !done:
		t.Fatalf("Next(%q) not done", msg)
	case wellFormed && (err != errRefused || calls != 1):
		t.Fatalf("Next(%q) = %v after %d calls, want authenticate's error", msg, err, calls)
	case !wellFormed && (err != errMalformedPLAIN || calls != 0):
		t.Fatalf("Next(%q) = %v after %d calls, want 501 and no call", msg, err, calls)
	}
	if _, _, err := s.Next(msg); !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
		t.Fatalf("second Next: %v", err)
	}
}

// firstLine returns s up to its first CR or LF.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
