package sieve

import (
	"errors"
	"testing"

	lt "github.com/passgate/passgate/internal/linetest"
)

// TestRefreshCapabilities: after the upstream changed (a reload calls
// RefreshCapabilities), new connections announce its new extensions; a
// probe that fails keeps the lines announced so far.
func TestRefreshCapabilities(t *testing.T) {
	e := newEnv(t, cleartext)
	e.dial(t, "PLAIN LOGIN")

	newCaps := []string{`"SIEVE" "fileinto vacation imap4flags"`, `"NOTIFY" "mailto"`}
	want := []string{`"IMPLEMENTATION" "passgate"`, `"SASL" "PLAIN LOGIN"`, newCaps[0], newCaps[1],
		`"STARTTLS"`, `"VERSION" "1.0"`, `OK "passgate ready"`}
	e.up.Caps = append([]string{`"IMPLEMENTATION" "Dovecot Pigeonhole"`}, newCaps...)
	e.srv.RefreshCapabilities(t.Context())
	lt.Dial(t, e.addr).Expect(want...)

	e.up.CapsErr = errors.New("upstream down")
	e.srv.RefreshCapabilities(t.Context())
	lt.Dial(t, e.addr).Expect(want...)
}
