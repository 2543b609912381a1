package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode"
)

// Alphabet is the 32 letters app passwords are made of: lower-case letters
// and digits without the look-alikes l, o, 0 and 1.
const Alphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// AppPasswordLen is the number of letters of an app password: 16 letters of
// 5 bits each, exactly 80 bits of entropy.
const AppPasswordLen = 16

// TagLen is the length of a lookup tag in bytes.
const TagLen = 16

// GenerateAppPassword returns a new random app password in display form,
// four groups of four letters: "abcd efgh jkmn pqrs". Each letter takes 5
// bits of 10 random bytes, so there is no modulo bias.
func GenerateAppPassword() (display string, err error) {
	var raw [AppPasswordLen * 5 / 8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate app password: %w", err)
	}
	var b strings.Builder
	var acc uint32 // bit accumulator
	nbits := 0
	i := 0
	for n := 0; n < AppPasswordLen; n++ {
		if nbits < 5 {
			acc = acc<<8 | uint32(raw[i])
			i++
			nbits += 8
		}
		nbits -= 5
		if n > 0 && n%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(Alphabet[(acc>>nbits)&31])
	}
	return b.String(), nil
}

// NormalizeSecret turns an app password as a user typed it back into its
// canonical form: white space and '-' removed, letters lower-cased.
func NormalizeSecret(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// Tag is the keyed lookup tag of an app password: the first 16 bytes of
// HMAC-SHA256(key, username || 0x00 || normalizedSecret). The key is the
// installation's store.LookupKey. It lets Verify find the one candidate app
// password without a slow hash; without the key the tag reveals nothing.
func Tag(key []byte, username, normalizedSecret string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(normalizedSecret))
	return m.Sum(nil)[:TagLen]
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random app password ID: 8 random bytes, base32 lower case
// without padding (13 characters, URL-safe).
func newID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("app password id: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}
