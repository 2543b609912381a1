package directory

import (
	"fmt"
	"strconv"
	"strings"
)

// AttrRule tests one attribute (or userdb field) of an entry. It is parsed
// from one of three forms:
//
//	name=value   some value of name equals value (case-insensitively)
//	name&mask    some value of name is an integer with any bit of mask set
//	             (Active Directory: "userAccountControl&2" is the disabled bit)
//	name         name is present with a value that is not "0", "false" or
//	             "no" (a boolean field without a value counts as true)
//
// Attribute names compare case-insensitively. The zero AttrRule matches
// nothing.
//
// In the struct, a non-zero Mask makes the name&mask form, else a non-empty
// Value the name=value form, else the presence form.
type AttrRule struct {
	Name  string
	Value string
	Mask  uint64
}

// ParseAttrRule parses s; an empty s gives the zero rule.
func ParseAttrRule(s string) (AttrRule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AttrRule{}, nil
	}
	if name, value, ok := strings.Cut(s, "="); ok {
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" || value == "" {
			return AttrRule{}, fmt.Errorf("attribute rule %q: want name=value with both non-empty", s)
		}
		return AttrRule{Name: name, Value: value}, nil
	}
	if name, mask, ok := strings.Cut(s, "&"); ok {
		m, err := strconv.ParseUint(strings.TrimSpace(mask), 0, 64)
		if err != nil || m == 0 {
			return AttrRule{}, fmt.Errorf("attribute rule %q: mask must be a non-zero integer", s)
		}
		if name = strings.TrimSpace(name); name == "" {
			return AttrRule{}, fmt.Errorf("attribute rule %q: empty attribute name", s)
		}
		return AttrRule{Name: name, Mask: m}, nil
	}
	if strings.ContainsAny(s, " \t") {
		return AttrRule{}, fmt.Errorf("attribute rule %q: want name, name=value or name&mask", s)
	}
	return AttrRule{Name: s}, nil
}

// IsZero reports whether the rule is unset.
func (r AttrRule) IsZero() bool { return r.Name == "" }

// String returns the rule in the form ParseAttrRule reads.
func (r AttrRule) String() string {
	switch {
	case r.Mask != 0:
		return r.Name + "&" + strconv.FormatUint(r.Mask, 10)
	case r.Value != "":
		return r.Name + "=" + r.Value
	}
	return r.Name
}

// Match reports whether values, the values of the attribute r.Name, satisfy
// the rule.
func (r AttrRule) Match(values []string) bool {
	if r.IsZero() {
		return false
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		switch {
		case r.Mask != 0:
			// AD writes userAccountControl as a signed 32-bit integer.
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && uint64(n)&r.Mask != 0 {
				return true
			}
		case r.Value != "":
			if strings.EqualFold(v, r.Value) {
				return true
			}
		default:
			switch strings.ToLower(v) {
			case "0", "false", "no":
			default:
				return true
			}
		}
	}
	return false
}
