package directory

import "testing"

func TestAttrRule(t *testing.T) {
	tests := []struct {
		rule   string
		values []string
		want   bool
	}{
		{"memberOf=cn=mfa,ou=groups,dc=example,dc=org", []string{"cn=staff,dc=x", "CN=MFA,ou=groups,dc=example,dc=org"}, true},
		{"employeeType=admin", []string{"staff"}, false},
		{"employeeType=admin", nil, false},
		{"userAccountControl&2", []string{"514"}, true},  // NORMAL_ACCOUNT|ACCOUNTDISABLE
		{"userAccountControl&2", []string{"512"}, false}, // NORMAL_ACCOUNT
		{"userAccountControl&0x2", []string{"-2147483646"}, true},
		{"userAccountControl&2", []string{"junk"}, false},
		{"passgate_mfa", []string{""}, true},
		{"passgate_mfa", []string{"yes"}, true},
		{"passgate_mfa", []string{"no"}, false},
		{"passgate_mfa", []string{"0"}, false},
		{"passgate_mfa", nil, false},
		{"", []string{"x"}, false},
	}
	for _, tt := range tests {
		r, err := ParseAttrRule(tt.rule)
		if err != nil {
			t.Fatalf("ParseAttrRule(%q): %v", tt.rule, err)
		}
		if got := r.Match(tt.values); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.rule, tt.values, got, tt.want)
		}
		if tt.rule != "" && r.String() == "" {
			t.Errorf("%q.String() is empty", tt.rule)
		}
	}
	for _, bad := range []string{"=x", "name=", "uac&", "uac&0", "uac&x", "two words"} {
		if _, err := ParseAttrRule(bad); err == nil {
			t.Errorf("ParseAttrRule(%q) accepted a malformed rule", bad)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		names Names
		login string
		want  string // "" means refused
	}{
		{Names{}, "Alice@Example.ORG", "alice@example.org"},
		{Names{}, "alice", "alice"},
		{Names{DefaultDomain: "Example.org"}, " Alice ", "alice@example.org"},
		{Names{DefaultDomain: "example.org"}, "alice@other.net", "alice@other.net"},
		{Names{DefaultDomain: "example.org"}, "*)(uid=*", ""},
		{Names{DefaultDomain: "example.org"}, "alice\tmaster", ""},
		{Names{DefaultDomain: "example.org"}, "alice\x00", ""},
		{Names{DefaultDomain: "example.org"}, "", ""},
		{Names{DefaultDomain: "example.org"}, "alice@", ""},
		{Names{}, "@example.org", ""},
		{Names{}, "a@b@c", "a@b@c"},
	}
	for _, tt := range tests {
		got, err := tt.names.Normalize(tt.login)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want refused", tt.login, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.login, got, err, tt.want)
		}
	}
	if err := (Names{DefaultDomain: "a@b"}).Validate(); err == nil {
		t.Error("Validate accepted a default domain with '@'")
	}
	if l, d := Split("a@b@c.org"); l != "a@b" || d != "c.org" {
		t.Errorf("Split = %q %q", l, d)
	}
}
