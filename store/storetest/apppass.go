package storetest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
)

func testAppPasswords(t *testing.T, o Opener) {
	t.Run("UnknownAccount", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := appPass("bob", "id1", t0)
		wantErr(t, "CreateAppPassword(unknown account)", s.CreateAppPassword(t.Context(), p), store.ErrNotFound)
		_, err := s.ListAppPasswords(t.Context(), "bob")
		wantErr(t, "ListAppPasswords(unknown account)", err, store.ErrNotFound)
		_, err = s.FindAppPassword(t.Context(), "bob", p.Tag)
		wantErr(t, "FindAppPassword(unknown account)", err, store.ErrNotFound)
	})

	t.Run("NoneYet", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		if list := mustList(t, s, "alice"); len(list) != 0 {
			t.Fatalf("new account lists %q", ids(list))
		}
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := appPass("alice", "id1", t0)
		mustCreateAppPassword(t, s, p)
		dup := appPass("alice", "id1", t0.Add(time.Hour))
		dup.Tag = tagFor("alice", "other")
		dup.Name = "impostor"
		wantErr(t, "CreateAppPassword(duplicate ID)", s.CreateAppPassword(t.Context(), dup), store.ErrExists)
		checkAppPasswords(t, "after duplicate ID", mustList(t, s, "alice"), []store.AppPassword{p})
		_, err := s.FindAppPassword(t.Context(), "alice", dup.Tag)
		wantErr(t, "FindAppPassword(tag of rejected duplicate)", err, store.ErrNotFound)
	})

	t.Run("DuplicateTag", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		p := appPass("alice", "id1", t0)
		mustCreateAppPassword(t, s, p)
		dup := appPass("alice", "id2", t0.Add(time.Hour))
		dup.Tag = p.Tag
		wantErr(t, "CreateAppPassword(duplicate tag)", s.CreateAppPassword(t.Context(), dup), store.ErrExists)
		checkAppPasswords(t, "after duplicate tag", mustList(t, s, "alice"), []store.AppPassword{p})
		got, err := s.FindAppPassword(t.Context(), "alice", p.Tag)
		if err != nil {
			t.Fatalf("FindAppPassword: %v", err)
		}
		checkAppPassword(t, "FindAppPassword after duplicate tag", got, p)
	})

	t.Run("SameTagOtherAccount", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		mustCreateAccount(t, s, "bob")
		pa := appPass("alice", "id1", t0)
		pb := appPass("bob", "id1", t0.Add(time.Minute))
		pb.Tag = pa.Tag
		mustCreateAppPassword(t, s, pa)
		mustCreateAppPassword(t, s, pb)
		for _, want := range []store.AppPassword{pa, pb} {
			got, err := s.FindAppPassword(t.Context(), want.Username, want.Tag)
			if err != nil {
				t.Fatalf("FindAppPassword(%q): %v", want.Username, err)
			}
			checkAppPassword(t, "FindAppPassword("+want.Username+")", got, want)
		}
	})

	t.Run("ListByCreation", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		// Insertion order, ID order and creation order all differ.
		b := appPass("alice", "b", t0.Add(2*time.Minute))
		c := appPass("alice", "c", t0)
		a := appPass("alice", "a", t0.Add(time.Minute))
		for _, p := range []store.AppPassword{b, c, a} {
			mustCreateAppPassword(t, s, p)
		}
		checkAppPasswords(t, "ListAppPasswords", mustList(t, s, "alice"), []store.AppPassword{c, a, b})
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		cases := []store.AppPassword{
			appPass("alice", "minimal", t0),
			func() store.AppPassword {
				p := appPass("alice", "full", t0.Add(time.Minute))
				p.Name = "Thunderbird on the \"work\" laptop ✓"
				p.Scopes = []store.Scope{store.ScopeSMTP}
				p.Expires = t0.Add(90 * 24 * time.Hour)
				p.AllowFrom = []netip.Prefix{
					netip.MustParsePrefix("192.0.2.0/24"),
					netip.MustParsePrefix("2001:db8::/32"),
					netip.MustParsePrefix("198.51.100.7/32"),
				}
				p.LastUsed = store.LastUse{
					Time:     t0.Add(time.Hour),
					IP:       netip.MustParseAddr("2001:db8::1"),
					Protocol: "imap",
					Client:   "Thunderbird/128.0",
				}
				return p
			}(),
			func() store.AppPassword {
				p := appPass("alice", "mapped", t0.Add(2*time.Minute))
				p.Tag = []byte{0, 0, 0xff, 0} // binary, with NULs
				p.LastUsed = store.LastUse{Time: t0, IP: netip.MustParseAddr("::ffff:192.0.2.1")}
				return p
			}(),
		}
		for _, p := range cases {
			mustCreateAppPassword(t, s, p)
		}
		checkAppPasswords(t, "ListAppPasswords", mustList(t, s, "alice"), cases)
		for _, want := range cases {
			got, err := s.FindAppPassword(t.Context(), "alice", want.Tag)
			if err != nil {
				t.Fatalf("FindAppPassword(%q): %v", want.ID, err)
			}
			checkAppPassword(t, "FindAppPassword", got, want)
		}
	})

	t.Run("FindOtherAccountsTag", func(t *testing.T) {
		s := o.New(t)
		mustCreateAccount(t, s, "alice")
		mustCreateAccount(t, s, "bob")
		pa := mustCreateAppPasswords(t, s, "alice", 2)
		_, err := s.FindAppPassword(t.Context(), "bob", pa[0].Tag)
		wantErr(t, "FindAppPassword(bob, alice's tag)", err, store.ErrNotFound)
		_, err = s.FindAppPassword(t.Context(), "alice", tagFor("alice", "never created"))
		wantErr(t, "FindAppPassword(unknown tag)", err, store.ErrNotFound)
		_, err = s.FindAppPassword(t.Context(), "alice", pa[0].Tag[:16])
		wantErr(t, "FindAppPassword(tag prefix)", err, store.ErrNotFound)
	})
}

func testTouch(t *testing.T, o Opener) {
	s := o.New(t)
	mustCreateAccount(t, s, "alice")
	ps := mustCreateAppPasswords(t, s, "alice", 2)

	uses := []store.LastUse{
		{Time: t0.Add(time.Hour), IP: netip.MustParseAddr("192.0.2.10"), Protocol: "imap", Client: "K-9 Mail/6.8"},
		{Time: t0.Add(2 * time.Hour), IP: netip.MustParseAddr("2001:db8::42"), Protocol: "smtp"},
	}
	for _, use := range uses {
		if err := s.TouchAppPassword(t.Context(), "alice", ps[0].ID, use); err != nil {
			t.Fatalf("TouchAppPassword: %v", err)
		}
		ps[0].LastUsed = use
		checkAppPasswords(t, "after touch", mustList(t, s, "alice"), ps)
		got, err := s.FindAppPassword(t.Context(), "alice", ps[0].Tag)
		if err != nil {
			t.Fatalf("FindAppPassword: %v", err)
		}
		checkAppPassword(t, "FindAppPassword after touch", got, ps[0])
	}

	if err := s.RevokeAppPassword(t.Context(), "alice", ps[0].ID); err != nil {
		t.Fatalf("RevokeAppPassword: %v", err)
	}
	err := s.TouchAppPassword(t.Context(), "alice", ps[0].ID, uses[0])
	wantErr(t, "TouchAppPassword(revoked)", err, store.ErrNotFound)
	checkAppPasswords(t, "touch of a revoked password", mustList(t, s, "alice"), ps[1:])
	err = s.TouchAppPassword(t.Context(), "bob", ps[1].ID, uses[0])
	wantErr(t, "TouchAppPassword(unknown account)", err, store.ErrNotFound)
	err = s.TouchAppPassword(t.Context(), "alice", "nosuchid", uses[0])
	wantErr(t, "TouchAppPassword(unknown id)", err, store.ErrNotFound)
}
