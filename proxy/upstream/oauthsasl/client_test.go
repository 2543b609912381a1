package oauthsasl

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// The published examples: the bytes an upstream sees must be exactly these.
// Line breaks the documents insert for reading are removed.
func TestInitialResponseMatchesPublishedExamples(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client *Client
		want   string
	}{{
		// Google, "XOAUTH2 mechanism" (developers.google.com/gmail/imap/xoauth2-protocol),
		// "Initial client response".
		name:   "google xoauth2",
		client: NewXOAuth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
		want: "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52" +
			"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==",
	}, {
		// Microsoft, "Authenticate an IMAP, POP or SMTP connection using
		// OAuth" (learn.microsoft.com), section "SASL XOAUTH2".
		name:   "microsoft xoauth2",
		client: NewXOAuth2("test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"),
		want: "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVy" +
			"IEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ==",
	}, {
		// RFC 7628 §4.1, "Successful Bearer Token Exchange".
		name:   "rfc 7628 oauthbearer",
		client: NewOAuthBearer("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 143),
		want: "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy" +
			"IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			mech, ir, err := tc.client.Start()
			if err != nil {
				t.Fatal(err)
			}
			if mech != tc.client.mech {
				t.Errorf("mechanism %q, want %q", mech, tc.client.mech)
			}
			if got := base64.StdEncoding.EncodeToString(ir); got != tc.want {
				t.Errorf("initial response\n got %s\nwant %s\n(decoded %q)", got, tc.want, ir)
			}
		})
	}
}

func TestOAuthBearerEscapesTheAuthzid(t *testing.T) {
	// RFC 5801 §4 saslname: "=" is =3D and "," is =2C, or the server
	// reads a different user (or a broken header).
	_, ir, err := NewOAuthBearer("a=b,c@example.com", "tok", "", 0).Start()
	if err != nil {
		t.Fatal(err)
	}
	if want := "n,a=a=3Db=2Cc@example.com,\x01auth=Bearer tok\x01\x01"; string(ir) != want {
		t.Errorf("got %q, want %q", ir, want)
	}
}

func TestStartRefusesFramingBytes(t *testing.T) {
	for _, c := range []*Client{
		// A user name that smuggles its own auth field.
		NewXOAuth2("alice\x01auth=Bearer forged", "tok"),
		NewXOAuth2("alice", "tok\x01\x01"),
		NewOAuthBearer("alice", "tok", "host\x01port=1", 0),
		NewOAuthBearer("al\x00ice", "tok", "", 0),
	} {
		_, ir, err := c.Start()
		if !errors.Is(err, ErrFraming) || ir != nil {
			t.Errorf("%s: Start = %q, %v; want ErrFraming and nothing to send", c, ir, err)
		}
	}
}

// Google's documented error challenge is answered with an empty response.
func TestXOAuth2AnswersGooglesErrorChallenge(t *testing.T) {
	challenge, err := base64.StdEncoding.DecodeString("eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t" +
		"YWlsLmdvb2dsZS5jb20vIn0K")
	if err != nil {
		t.Fatal(err)
	}
	c := NewXOAuth2("someuser@example.com", "expired")
	if _, _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Next(challenge)
	if err != nil || resp == nil || len(resp) != 0 {
		t.Fatalf("Next = %q, %v; want an empty response", resp, err)
	}
	f := c.Failure()
	if f == nil || f.Status != "401" || f.Scope != "https://mail.google.com/" || f.Schemes != "bearer mac" {
		t.Fatalf("Failure = %+v", f)
	}
	if v := Classify(f); v != Retry {
		t.Errorf("Classify = %v, want retry", v)
	}
	if _, err := c.Next(challenge); err == nil {
		t.Error("a second challenge was answered; want the exchange aborted")
	}
}

// RFC 7628 §4.3's failed exchange: the client answers with a single %x01.
func TestOAuthBearerAnswersRFC7628ErrorChallenge(t *testing.T) {
	challenge, _ := base64.StdEncoding.DecodeString("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=")
	c := NewOAuthBearer("user@example.com", "tok", "server.example.com", 143)
	resp, err := c.Next(challenge)
	if err != nil || base64.StdEncoding.EncodeToString(resp) != "AQ==" {
		t.Fatalf("Next = %q, %v; want AQ== (%%x01)", resp, err)
	}
	f := c.Failure()
	if f.Status != "invalid_token" || f.Scope != "example_scope" ||
		f.OpenIDConfiguration != "https://example.com/.well-known/openid-configuration" {
		t.Fatalf("Failure = %+v", f)
	}
	if Classify(f) != Retry {
		t.Errorf("Classify = %v, want retry", Classify(f))
	}
}

func TestStringNeverShowsTheToken(t *testing.T) {
	c := NewXOAuth2("alice@example.com", "s3cr3t-token")
	c.Next([]byte(`{"status":"401"}`))
	if s := c.String(); strings.Contains(s, "s3cr3t") || !strings.Contains(s, "alice@example.com") {
		t.Errorf("String = %q", s)
	}
}
