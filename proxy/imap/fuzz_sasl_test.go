package imap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
	"github.com/passgate/passgate/store"
)

// refuseAll is an Authenticator that refuses every login and keeps the
// attempts.
type refuseAll struct {
	mu       sync.Mutex
	attempts []authn.Attempt
}

func (r *refuseAll) Verify(_ context.Context, a authn.Attempt) (authn.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
	return authn.Decision{Result: authn.BadSecret}, nil
}

func (r *refuseAll) only(t *testing.T) (authn.Attempt, bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch len(r.attempts) {
	case 0:
		return authn.Attempt{}, false
	case 1:
		return r.attempts[0], true
	}
	t.Fatalf("%d attempts, want at most 1", len(r.attempts))
	return authn.Attempt{}, false
}

// fuzzMaxLine is the line limit of the SASL fuzz servers.
const fuzzMaxLine = 1024

// saslServer starts a cleartext server over net.Pipe and returns a greeted
// client; cleanup shuts it down and waits for every goroutine.
func saslServer(t *testing.T) (*client, *refuseAll) {
	auth := &refuseAll{}
	srv := &Server{
		Auth:           auth,
		Upstream:       &pipeUpstream{},
		AllowCleartext: true,
		Limits:         proxy.Limits{PreauthTimeout: 10 * time.Second, MaxLine: fuzzMaxLine},
		Logger:         slog.New(slog.DiscardHandler),
	}
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	nc := ln.dial()
	c := &client{t: t, conn: nc, r: bufio.NewReader(nc)}
	t.Cleanup(func() {
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
	})
	c.expectPrefix("* OK ")
	return c, auth
}

// FuzzSASLPlain checks the PLAIN decoder (RFC 4616) on arbitrary
// responses: a response with exactly two NULs decodes into three fields
// that re-encode to the same bytes, anything else is refused; base64 on
// the wire round-trips; and a server given the response, as an initial
// response or after a continuation, passes exactly authcid and passwd to
// the Authenticator, or refuses without calling it.
func FuzzSASLPlain(f *testing.F) {
	f.Fuzz(func(t *testing.T, resp []byte, continuation bool) {
		authzid, authcid, passwd, err := decodePlain(resp)
		twoNULs := bytes.Count(resp, []byte{0}) == 2
		switch {
		case err == nil && !twoNULs, err != nil && twoNULs:
			t.Fatalf("decodePlain(%q) error = %v with %d NULs", resp, err, bytes.Count(resp, []byte{0}))
		case err == nil && authzid+"\x00"+authcid+"\x00"+passwd != string(resp):
			t.Fatalf("decodePlain(%q) = %q %q %q: does not re-encode to the response", resp, authzid, authcid, passwd)
		}
		wire := base64.StdEncoding.EncodeToString(resp)
		if got, err := decodeResponse(wire); err != nil || !bytes.Equal(got, resp) {
			t.Fatalf("decodeResponse(%q) = %q, %v; want %q", wire, got, err, resp)
		}
		if len(wire) > fuzzMaxLine-len("a AUTHENTICATE PLAIN \r\n") {
			return // covered by the line limit tests
		}

		c, auth := saslServer(t)
		if continuation {
			c.send("a AUTHENTICATE PLAIN\r\n")
			c.expect("+ ")
			c.send(wire + "\r\n")
		} else {
			if wire == "" {
				wire = "=" // RFC 4959 §3: an empty initial response
			}
			c.send("a AUTHENTICATE PLAIN " + wire + "\r\n")
		}
		reply := c.line()
		a, called := auth.only(t)
		switch {
		case err != nil:
			if reply != "a BAD Malformed PLAIN response" || called {
				t.Fatalf("malformed %q: reply %q, Verify called %v", resp, reply, called)
			}
		case authzid != "" && !store.SameUsername(authzid, authcid):
			if reply != "a NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed" || called {
				t.Fatalf("authzid %q for %q: reply %q, Verify called %v", authzid, authcid, reply, called)
			}
		default:
			if reply != "a NO [AUTHENTICATIONFAILED] Invalid credentials" || !called {
				t.Fatalf("response %q: reply %q, Verify called %v", resp, reply, called)
			}
			if a.Username != authcid || a.Secret != passwd || a.Mechanism != "PLAIN" {
				t.Fatalf("response %q: Verify got user %q secret %q mech %q", resp, a.Username, a.Secret, a.Mechanism)
			}
		}
		c.expectTagged("x", "NOOP", "x OK NOOP completed")
	})
}

// FuzzSASLLogin runs the LOGIN mechanism with arbitrary user names and
// passwords, base64-encoded (raw false) or as raw response lines (raw
// true), with the user as an initial response or after the "Username:"
// prompt. The Authenticator must get exactly the decoded bytes; a line
// that is not base64 gets BAD, "*" cancels, and the connection stays
// usable.
func FuzzSASLLogin(f *testing.F) {
	f.Fuzz(func(t *testing.T, user, pass string, initial, raw bool) {
		userLine, passLine := base64.StdEncoding.EncodeToString([]byte(user)), base64.StdEncoding.EncodeToString([]byte(pass))
		if raw {
			userLine, passLine = firstLine(user), firstLine(pass)
		}
		if initial && (userLine == "" || strings.ContainsAny(userLine, " (){%*\"\\]\x7f") || hasCTL(userLine)) {
			if !raw {
				userLine = "=" // RFC 4959 §3: an empty initial response
			} else {
				initial = false // not an atom: send it after the prompt
			}
		}
		if len(userLine) > fuzzMaxLine/2 || len(passLine) > fuzzMaxLine/2 {
			return // covered by the line limit tests
		}
		wantUser, userErr := decodeResponse(userLine)
		wantPass, passErr := decodeResponse(passLine)

		c, auth := saslServer(t)
		if initial {
			c.send("a AUTHENTICATE LOGIN " + userLine + "\r\n")
		} else {
			c.send("a AUTHENTICATE LOGIN\r\n")
			c.expect("+ VXNlcm5hbWU6")
			c.send(userLine + "\r\n")
		}
		reply := c.line()
		if userLine == "*" && !initial {
			wantReply(t, reply, "a BAD Authentication canceled", auth)
			return
		}
		if userErr != nil {
			wantReply(t, reply, "a BAD Invalid base64", auth)
			return
		}
		if reply != "+ UGFzc3dvcmQ6" {
			t.Fatalf("user line %q: got %q, want the password prompt", userLine, reply)
		}
		c.send(passLine + "\r\n")
		reply = c.line()
		switch {
		case passLine == "*":
			wantReply(t, reply, "a BAD Authentication canceled", auth)
		case passErr != nil:
			wantReply(t, reply, "a BAD Invalid base64", auth)
		default:
			if reply != "a NO [AUTHENTICATIONFAILED] Invalid credentials" {
				t.Fatalf("got %q, want NO [AUTHENTICATIONFAILED]", reply)
			}
			a, called := auth.only(t)
			if !called || a.Username != string(wantUser) || a.Secret != string(wantPass) || a.Mechanism != "LOGIN" {
				t.Fatalf("Verify got %+v (called %v), want user %q secret %q", a, called, wantUser, wantPass)
			}
		}
		c.expectTagged("x", "NOOP", "x OK NOOP completed")
	})
}

// wantReply checks a refusal that must not reach the Authenticator, then
// that the connection is still usable.
func wantReply(t *testing.T, got, want string, auth *refuseAll) {
	t.Helper()
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, called := auth.only(t); called {
		t.Fatal("Verify was called")
	}
}

// firstLine returns s up to its first CR or LF.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func hasCTL(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' })
}
