package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUsernameLen bounds usernames (RFC 5321 allows 254 for an address).
const MaxUsernameLen = 254

// NormalizeUsername lower-cases and trims a username as typed by a client or
// an operator, and rejects what cannot be a mail login: empty, too long,
// invalid UTF-8, spaces, control characters, or '*' (Dovecot's master user
// separator).
func NormalizeUsername(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", fmt.Errorf("username is empty")
	case len(s) > MaxUsernameLen:
		return "", fmt.Errorf("username is longer than %d bytes", MaxUsernameLen)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("username is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '*' || r == '"' || r == '\\' {
			return "", fmt.Errorf("username contains %q", r)
		}
	}
	return s, nil
}
