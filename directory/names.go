package directory

import (
	"fmt"
	"strings"

	"github.com/passgate/passgate/store"
)

// Names normalises logins the way the directory sees them, so that "Alice",
// "alice@EXAMPLE.org" and "alice@example.org" are one account. The zero
// value lower-cases and checks the name (store.NormalizeUsername) and adds
// no domain.
type Names struct {
	// DefaultDomain is appended ("@" + DefaultDomain) to a login without
	// a domain. Empty: such logins stay as typed (lower-cased).
	DefaultDomain string
}

// Normalize returns the passgate username for a login as typed by a user.
// Its error (wrapping ErrNotFound) means the login cannot name any account;
// it never contains the login itself, which may be a mistyped password.
func (n Names) Normalize(login string) (string, error) {
	name, err := store.NormalizeUsername(login)
	if err != nil {
		return "", fmt.Errorf("normalize username: %w (%v)", ErrNotFound, err)
	}
	if local, domain, ok := strings.Cut(name, "@"); ok && (local == "" || domain == "" || strings.HasPrefix(domain, ".")) {
		return "", fmt.Errorf("normalize username: %w (an address needs a local part and a domain)", ErrNotFound)
	}
	if n.DefaultDomain != "" && !strings.Contains(name, "@") {
		name += "@" + strings.ToLower(n.DefaultDomain)
		if _, err := store.NormalizeUsername(name); err != nil {
			return "", fmt.Errorf("normalize username: %w (%v)", ErrNotFound, err)
		}
	}
	return name, nil
}

// Validate reports whether DefaultDomain can be used in a username.
func (n Names) Validate() error {
	if n.DefaultDomain == "" {
		return nil
	}
	d, err := store.NormalizeUsername(n.DefaultDomain)
	if err != nil || strings.Contains(d, "@") {
		return fmt.Errorf("default_domain %q is not a mail domain", n.DefaultDomain)
	}
	return nil
}

// Split returns the local part and the domain of a normalised username
// (the part after the last '@'); domain is empty when there is no '@'.
func Split(username string) (local, domain string) {
	i := strings.LastIndexByte(username, '@')
	if i < 0 {
		return username, ""
	}
	return username[:i], username[i+1:]
}
