package authn

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateAppPassword(t *testing.T) {
	const n = 2000
	shape := regexp.MustCompile(`^[` + Alphabet + `]{4}( [` + Alphabet + `]{4}){3}$`)
	seen := map[string]bool{}
	var counts [AppPasswordLen][32]int // per position, per letter
	for range n {
		display, err := GenerateAppPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(display) {
			t.Fatalf("app password %q: want four groups of four letters of %q", display, Alphabet)
		}
		s := NormalizeSecret(display)
		if len(s) != AppPasswordLen {
			t.Fatalf("normalised %q: %d letters, want %d", s, len(s), AppPasswordLen)
		}
		if seen[s] {
			t.Fatalf("app password %q generated twice", s)
		}
		seen[s] = true
		for i := range len(s) {
			counts[i][strings.IndexByte(Alphabet, s[i])]++
		}
	}
	// Every letter appears at every position. Expected count is 62.5 with a
	// standard deviation near 7.8; fewer than 20 means a broken bit split.
	for pos := range counts {
		for letter, c := range counts[pos] {
			if c < 20 {
				t.Errorf("position %d: letter %q appeared %d times in %d secrets", pos, Alphabet[letter], c, n)
			}
		}
	}
}

func TestAlphabet(t *testing.T) {
	if len(Alphabet) != 32 {
		t.Fatalf("alphabet has %d letters, want 32", len(Alphabet))
	}
	for _, c := range "lo01ABCXYZ" {
		if strings.ContainsRune(Alphabet, c) {
			t.Errorf("alphabet contains look-alike or upper-case %q", c)
		}
	}
	for i := range Alphabet {
		if strings.IndexByte(Alphabet, Alphabet[i]) != i {
			t.Errorf("alphabet repeats %q", Alphabet[i])
		}
	}
}

func TestNormalizeSecret(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abcd efgh jkmn pqrs", "abcdefghjkmnpqrs"},
		{"ABCD efgh-JKMN pqrs", "abcdefghjkmnpqrs"},
		{"abcdefghjkmnpqrs", "abcdefghjkmnpqrs"},
		{"  abcd\tefgh-jkmn--pqrs\n", "abcdefghjkmnpqrs"},
		{"AbCd-EfGh-JkMn-PqRs", "abcdefghjkmnpqrs"},
		{"", ""},
	} {
		if got := NormalizeSecret(tc.in); got != tc.want {
			t.Errorf("NormalizeSecret(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTag(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	base := Tag(key, "alice@example.com", "abcdefghjkmnpqrs")
	if len(base) != TagLen {
		t.Fatalf("tag is %d bytes, want %d", len(base), TagLen)
	}
	if !bytes.Equal(base, Tag(key, "alice@example.com", "abcdefghjkmnpqrs")) {
		t.Error("tag is not deterministic")
	}
	for name, other := range map[string][]byte{
		"other key":      Tag(bytes.Repeat([]byte{2}, 32), "alice@example.com", "abcdefghjkmnpqrs"),
		"other user":     Tag(key, "bob@example.com", "abcdefghjkmnpqrs"),
		"other secret":   Tag(key, "alice@example.com", "abcdefghjkmnpqrt"),
		"moved boundary": Tag(key, "alice@example.coma", "bcdefghjkmnpqrs"),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("%s: same tag", name)
		}
	}
}

func TestNewID(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z2-7]{13}$`)
	seen := map[string]bool{}
	for range 100 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("id %q: want 13 unique base32 lower-case letters", id)
		}
		seen[id] = true
	}
}
