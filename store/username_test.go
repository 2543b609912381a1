package store

import (
	"strings"
	"testing"
)

func TestCheckSeparators(t *testing.T) {
	for _, tt := range []struct {
		user string
		seps []string
		bad  string // the separator the error must name; "" = accepted
	}{
		{"alice@example.org", []string{"*", "%"}, ""},
		{"eve%bob@example.org", []string{"*", "%"}, "%"},
		{"eve%bob@example.org", []string{"*"}, ""},
		{"eve%bob@example.org", nil, ""},
		{"eve%bob@example.org", []string{""}, ""},
		{"%", []string{"%"}, "%"},
	} {
		err := CheckSeparators(tt.user, tt.seps)
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("CheckSeparators(%q, %q) = %v, want nil", tt.user, tt.seps, err)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), `"`+tt.bad+`"`)):
			t.Errorf("CheckSeparators(%q, %q) = %v, want an error naming %q", tt.user, tt.seps, err, tt.bad)
		}
	}
}

func TestSameUsername(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"alice@example.org", "alice@example.org", true},
		{"Alice@Example.ORG", " alice@example.org ", true},
		{"alice@example.org", "bob@example.org", false},
		{"", "", true},                   // neither normalises: compared as given
		{"a b", "a b", true},             // likewise
		{"a b", "A B", false},            // not normalised, so case counts
		{"alice@example.org", "", false}, // one normalises, the other does not
	} {
		if got := SameUsername(tt.a, tt.b); got != tt.want {
			t.Errorf("SameUsername(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
