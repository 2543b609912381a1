package oauthsasl

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		challenge string
		want      Verdict
	}{
		// Expired or invalid token: refresh once and retry.
		{`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`, Retry},
		{`{"status":"invalid_token","schemes":"bearer"}`, Retry},
		{`{"status":" Invalid_Token "}`, Retry},
		// Valid token without the permission: a new token will not help.
		{`{"status":"403","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`, Refused},
		{`{"status":"400","schemes":"bearer"}`, Refused},
		{`{"status":"insufficient_scope","scope":"IMAP.AccessAsApp"}`, Refused},
		{`{"status":"invalid_scope"}`, Refused},
		{`{"status":"invalid_request"}`, Refused},
		// The server's own trouble, or something unknown.
		{`{"status":"500"}`, Unavailable},
		{`{"status":"503","schemes":"bearer"}`, Unavailable},
		{`{"status":"temporarily_unavailable"}`, Unavailable},
		{`{}`, Unavailable},
		{`not json`, Unavailable},
		{``, Unavailable},
		{`["401"]`, Unavailable},
	} {
		f := ParseFailure([]byte(tc.challenge))
		if got := Classify(f); got != tc.want {
			t.Errorf("Classify(%s) = %v, want %v", tc.challenge, got, tc.want)
		}
	}
	if Classify(nil) != Unavailable {
		t.Error("Classify(nil) is not unavailable")
	}
}

func TestExplainNamesWhatToGrant(t *testing.T) {
	text := Explain(ParseFailure([]byte(`{"status":"403","scope":"https://outlook.office365.com/.default"}`)))
	for _, want := range []string{"403", "IMAP.AccessAsApp", "domain-wide delegation", "consent"} {
		if !strings.Contains(text, want) {
			t.Errorf("Explain lacks %q: %s", want, text)
		}
	}
}

func TestParseFailureBoundsWhatItKeeps(t *testing.T) {
	f := ParseFailure([]byte(`{"status":"4\u0000\r\n01` + strings.Repeat("x", 5000) + `"}`))
	if len(f.Status) > maxField || strings.ContainsAny(f.Status, "\x00\r\n") {
		t.Errorf("status kept %d bytes with control characters: %q...", len(f.Status), f.Status[:10])
	}
}

func FuzzParseFailure(f *testing.F) {
	f.Add([]byte(`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`))
	f.Add([]byte(`{"status":"invalid_token","openid-configuration":"https://example.com/"}`))
	f.Add([]byte(`{"status":1}`))
	f.Fuzz(func(t *testing.T, challenge []byte) {
		fl := ParseFailure(challenge)
		v := Classify(fl)
		if v != Retry && v != Refused && v != Unavailable {
			t.Fatalf("verdict %d", v)
		}
		for _, s := range []string{fl.Status, fl.Schemes, fl.Scope, fl.OpenIDConfiguration, fl.String()} {
			if strings.ContainsAny(s, "\x00\r\n") || !utf8.ValidString(s) {
				t.Fatalf("unsafe text %q", s)
			}
		}
	})
}
