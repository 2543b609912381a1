package ldap

import "testing"

func TestFilterTemplate(t *testing.T) {
	tmpl, err := parseFilterTemplate("(&(objectClass=inetOrgPerson)(|(mail={user})(uid={local})))", "user", "local", "domain")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ user, local, want string }{
		{"alice@example.org", "alice", `(&(objectClass=inetOrgPerson)(|(mail=alice@example.org)(uid=alice)))`},
		{"*)(uid=*", "*)(uid=*", `(&(objectClass=inetOrgPerson)(|(mail=\2a\29\28uid=\2a)(uid=\2a\29\28uid=\2a)))`},
		{`a\b`, "a\x00", `(&(objectClass=inetOrgPerson)(|(mail=a\5cb)(uid=a\00)))`},
	}
	for _, tt := range tests {
		if got := tmpl.expand(map[string]string{"user": tt.user, "local": tt.local}); got != tt.want {
			t.Errorf("expand(%q) = %s, want %s", tt.user, got, tt.want)
		}
	}
	for _, bad := range []string{
		"",
		"(objectClass=person)", // no placeholder: every login finds the same entry
		"(uid={username})",     // unknown placeholder
		"(uid={user}",          // does not compile
		"(uid={user)",          // unclosed placeholder
	} {
		if _, err := parseFilterTemplate(bad, "user", "local", "domain"); err == nil {
			t.Errorf("parseFilterTemplate(%q) accepted it", bad)
		}
	}
}
