package smtp

import (
	"errors"
	"strings"
	"unicode/utf8"
)

var errAddressSyntax = errors.New("address syntax")

// upstreamPath writes a mailbox as go-smtp decoded it (a Quoted-string
// local part unquoted, a source route dropped) back into RFC 5321 §4.1.2
// syntax for the command passgate sends upstream: the local part as a
// Dot-string when it is one, else as a Quoted-string with DQUOTE and
// backslash escaped, so that nothing in it can close the path or add a
// parameter ("victim@example.net> NOTIFY=..."). The domain must be a
// domain name (RFC 6531 U-labels allowed) or an address literal. The null
// reverse-path "" stays "".
func upstreamPath(mailbox string) (string, error) {
	if mailbox == "" {
		return "", nil
	}
	at := strings.LastIndexByte(mailbox, '@')
	if at <= 0 || !utf8.ValidString(mailbox) {
		return "", errAddressSyntax
	}
	local, domain := mailbox[:at], mailbox[at+1:]
	if !validDomain(domain) {
		return "", errAddressSyntax
	}
	if isDotString(local) {
		return mailbox, nil
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		ch := local[i]
		switch {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\') // quoted-pairSMTP
		case ch < ' ' || ch == 0x7f:
			// Neither qtextSMTP nor quoted-pairSMTP: no way to write it.
			return "", errAddressSyntax
		}
		b.WriteByte(ch)
	}
	b.WriteString(`"@`)
	b.WriteString(domain)
	return b.String(), nil
}

// isDotString reports whether s is a Dot-string: atoms of atext joined by
// single dots (RFC 5321 §4.1.2; RFC 6531 §3.3 adds UTF-8 to atext).
func isDotString(s string) bool {
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext reports whether b may appear in an atom (RFC 5322 §3.2.3), bytes
// of UTF-8 sequences included.
func isAtext(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", b) >= 0
}

// validDomain reports whether s is a Domain (labels of letters, digits
// and hyphens, or UTF-8) or an address-literal of RFC 5321 §4.1.2/§4.1.3:
// "[" 1*dcontent "]", which covers IPv4, "IPv6:" and general literals.
func validDomain(s string) bool {
	if lit, ok := strings.CutPrefix(s, "["); ok {
		lit, ok = strings.CutSuffix(lit, "]")
		if !ok || lit == "" {
			return false
		}
		for i := 0; i < len(lit); i++ {
			// dcontent = %d33-90 / %d94-126
			if c := lit[i]; c < 33 || c > 126 || (c >= 91 && c <= 93) {
				return false
			}
		}
		return true
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}
