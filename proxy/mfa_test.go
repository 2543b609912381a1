package proxy

import "testing"

func TestMFAText(t *testing.T) {
	for _, tt := range []struct{ msg, url, want string }{
		{"", "https://p.example/", "Application password required: create one at https://p.example/"},
		{"", "", "Application password required: create one in the app-passwords portal"},
		{"See {portal_url} or {portal_url}", "http://a/", "See http://a/ or http://a/"},
		{"Ask your admin", "", "Ask your admin"},
		{"Ask your admin", "http://a/", "Ask your admin"},
	} {
		if got := MFAText(tt.msg, tt.url); got != tt.want {
			t.Errorf("MFAText(%q, %q) = %q, want %q", tt.msg, tt.url, got, tt.want)
		}
	}
}
