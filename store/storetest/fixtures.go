package storetest

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

// t0 is the base time of fixtures; nanoseconds check that time round-trips
// at full precision.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// fakeHash stands in for an argon2id PHC string (the store never parses it).
const fakeHash = "$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"

// errBoom is returned by update functions that must abort.
var errBoom = errors.New("storetest: boom")

// tagFor returns a 32-byte binary tag (like authn's HMAC) for a fixture.
func tagFor(username, id string) []byte {
	sum := sha256.Sum256([]byte(username + "\x00" + id))
	return sum[:]
}

// account returns a fixture account.
func account(username string) store.Account {
	return store.Account{Username: username, PasswordHash: fakeHash, Created: t0}
}

// appPass returns a fixture app password with a unique tag.
func appPass(username, id string, created time.Time) store.AppPassword {
	return store.AppPassword{
		ID:       id,
		Username: username,
		Name:     "client " + id,
		Verifier: fakeHash,
		Tag:      tagFor(username, id),
		Scopes:   slices.Clone(store.AllScopes),
		Created:  created,
	}
}

// mustCreateAccount stores account(username) and returns it.
func mustCreateAccount(t *testing.T, s store.Store, username string) store.Account {
	t.Helper()
	a := account(username)
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount(%q): %v", username, err)
	}
	return a
}

// mustCreateAppPasswords stores n fixture app passwords of username, created
// one minute apart, and returns them in creation order.
func mustCreateAppPasswords(t *testing.T, s store.Store, username string, n int) []store.AppPassword {
	t.Helper()
	var ps []store.AppPassword
	for i := range n {
		p := appPass(username, string(rune('a'+i))+"id", t0.Add(time.Duration(i)*time.Minute))
		mustCreateAppPassword(t, s, p)
		ps = append(ps, p)
	}
	return ps
}

func mustCreateAppPassword(t *testing.T, s store.Store, p store.AppPassword) {
	t.Helper()
	if err := s.CreateAppPassword(t.Context(), p); err != nil {
		t.Fatalf("CreateAppPassword(%q, %q): %v", p.Username, p.ID, err)
	}
}

// mustList returns the app passwords of username.
func mustList(t *testing.T, s store.Store, username string) []store.AppPassword {
	t.Helper()
	list, err := s.ListAppPasswords(t.Context(), username)
	if err != nil {
		t.Fatalf("ListAppPasswords(%q): %v", username, err)
	}
	return list
}

// ids returns the IDs of list, in order.
func ids(list []store.AppPassword) []string {
	out := make([]string, 0, len(list))
	for _, p := range list {
		out = append(out, p.ID)
	}
	return out
}

// wantErr fails t unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// normAccount and normAppPassword make values comparable with
// reflect.DeepEqual: times in UTC without monotonic readings.
func normAccount(a store.Account) store.Account {
	a.Created = a.Created.UTC()
	if len(a.Aliases) == 0 {
		a.Aliases = nil
	}
	if a.TOTP != nil {
		totp := *a.TOTP
		totp.Enrolled = totp.Enrolled.UTC()
		if len(totp.RecoveryHashes) == 0 {
			totp.RecoveryHashes = nil
		}
		if len(totp.Recovery) == 0 {
			totp.Recovery = nil
		}
		a.TOTP = &totp
	}
	if a.OAuth != nil {
		link := *a.OAuth
		link.Linked, link.Refused = link.Linked.UTC(), link.Refused.UTC()
		a.OAuth = &link
	}
	return a
}

func normAppPassword(p store.AppPassword) store.AppPassword {
	p.Created = p.Created.UTC()
	p.Expires = p.Expires.UTC()
	p.LastUsed.Time = p.LastUsed.Time.UTC()
	if len(p.AllowFrom) == 0 {
		p.AllowFrom = nil
	}
	if len(p.Scopes) == 0 {
		p.Scopes = nil
	}
	return p
}

func checkAccount(t *testing.T, what string, got, want store.Account) {
	t.Helper()
	if g, w := normAccount(got), normAccount(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func checkAppPassword(t *testing.T, what string, got, want store.AppPassword) {
	t.Helper()
	if g, w := normAppPassword(got), normAppPassword(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func checkAppPasswords(t *testing.T, what string, got, want []store.AppPassword) {
	t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("%s: IDs %q, want %q", what, ids(got), ids(want))
	}
	for i := range got {
		checkAppPassword(t, what, got[i], want[i])
	}
}
