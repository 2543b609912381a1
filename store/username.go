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

// CheckSeparators refuses a username that contains one of separators: the
// strings an upstream login puts between user and master user (Dovecot's
// auth_master_user_separator, login-master mode). The upstream splits
// "user<sep>master" at the first separator, so such a name would make it
// read part of the name as a master user. The error names the separator.
func CheckSeparators(username string, separators []string) error {
	for _, sep := range separators {
		if sep != "" && strings.Contains(username, sep) {
			return fmt.Errorf("username contains %q, the upstream's master user separator", sep)
		}
	}
	return nil
}

// SameUsername reports whether a and b name the same account: equal once
// normalised, or, when either cannot be normalised, equal as given.
func SameUsername(a, b string) bool {
	na, errA := NormalizeUsername(a)
	nb, errB := NormalizeUsername(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return na == nb
}
