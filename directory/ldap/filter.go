package ldap

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// filterTemplate is an LDAP filter with {name} placeholders whose values are
// escaped (RFC 4515 section 3) when it is expanded.
type filterTemplate struct {
	raw string
}

// parseFilterTemplate checks raw: every {name} must be one of allowed, at
// least one must appear, and the filter must compile once expanded.
func parseFilterTemplate(raw string, allowed ...string) (filterTemplate, error) {
	t := filterTemplate{raw: strings.TrimSpace(raw)}
	if t.raw == "" {
		return t, fmt.Errorf("filter is empty")
	}
	used := 0
	for rest := t.raw; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, fmt.Errorf("filter %q: unclosed {", raw)
		}
		name := rest[i+1 : i+j]
		known := false
		for _, a := range allowed {
			known = known || name == a
		}
		if !known {
			return t, fmt.Errorf("filter %q: unknown placeholder {%s} (want one of {%s})", raw, name, strings.Join(allowed, "}, {"))
		}
		used++
		rest = rest[i+j+1:]
	}
	if used == 0 {
		return t, fmt.Errorf("filter %q uses none of {%s}: it would match the same entry for every login", raw, strings.Join(allowed, "}, {"))
	}
	sample := map[string]string{}
	for _, a := range allowed {
		sample[a] = "x"
	}
	if _, err := ldap.CompileFilter(t.expand(sample)); err != nil {
		return t, fmt.Errorf("filter %q: %v", raw, err)
	}
	return t, nil
}

// expand replaces each {name} with ldap.EscapeFilter(values[name]).
func (t filterTemplate) expand(values map[string]string) string {
	var b strings.Builder
	for rest := t.raw; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(rest[:i])
		b.WriteString(ldap.EscapeFilter(values[rest[i+1:i+j]]))
		rest = rest[i+j+1:]
	}
}
