package portal

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestAutoconfig(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.Mail = MailSettings{IMAPHost: "mail.example.org", SMTPSecurity: SecuritySTARTTLS}
	})
	b := f.browser()
	tests := []struct {
		path, domain string
	}{
		{"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40Example.ORG", "example.org"},
		{"/mail/config-v1.1.xml?emailaddress=carol@corp.example", "corp.example"},
		{"/mail/config-v1.1.xml", "127.0.0.1"}, // no address: the Host
		{"/mail/config-v1.1.xml?emailaddress=x@<script>", "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := b.get(tc.path)
			if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/xml") {
				t.Fatalf("%d %q", r.StatusCode, r.Header.Get("Content-Type"))
			}
			var cc clientConfig
			if err := xml.Unmarshal([]byte(r.Body), &cc); err != nil {
				t.Fatalf("%v\n%s", err, r.Body)
			}
			p := cc.Provider
			want := emailProvider{ID: tc.domain, Domain: tc.domain, DisplayName: tc.domain + " mail", ShortName: tc.domain,
				Incoming: []acServer{{Type: "imap", Hostname: "mail.example.org", Port: 993, SocketType: "SSL",
					Authentication: "password-cleartext", Username: "%EMAILADDRESS%"}},
				Outgoing: acServer{Type: "smtp", Hostname: "mail.example.org", Port: 587, SocketType: "STARTTLS",
					Authentication: "password-cleartext", Username: "%EMAILADDRESS%"},
			}
			p.Documentation = nil
			if cc.Version != "1.1" || !reflect.DeepEqual(p, want) {
				t.Errorf("got %+v\nwant %+v", p, want)
			}
		})
	}
	// A loopback server without TLS (the demo): socketType plain, and the
	// default ports of SecurityNone are the plain ones.
	t.Run("no TLS", func(t *testing.T) {
		f := newFixture(t, func(s *Server) {
			s.Mail = MailSettings{IMAPHost: "127.0.0.1", IMAPPort: 1143, IMAPSecurity: SecurityNone, SMTPSecurity: SecurityNone}
		})
		r := f.browser().get("/mail/config-v1.1.xml?emailaddress=alice@example.org")
		var cc clientConfig
		if err := xml.Unmarshal([]byte(r.Body), &cc); err != nil {
			t.Fatalf("%d %v\n%s", r.StatusCode, err, r.Body)
		}
		if len(cc.Provider.Incoming) != 1 {
			t.Fatalf("incoming servers %+v, want IMAP only", cc.Provider.Incoming)
		}
		in, out := cc.Provider.Incoming[0], cc.Provider.Outgoing
		if in.Hostname != "127.0.0.1" || in.Port != 1143 || in.SocketType != "plain" ||
			out.Hostname != "127.0.0.1" || out.Port != 587 || out.SocketType != "plain" {
			t.Errorf("incoming %+v\noutgoing %+v", in, out)
		}
	})
}

func TestAutodiscover(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.Mail = MailSettings{IMAPHost: "mail.example.org", IMAPSecurity: SecuritySTARTTLS, SMTPHost: "smtp.example.org"}
	})
	b := f.browser()
	want := []adProtocol{
		{Type: "IMAP", Server: "mail.example.org", Port: 143, LoginName: "bob@example.org", DomainRequired: "off",
			SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"},
		{Type: "SMTP", Server: "smtp.example.org", Port: 465, LoginName: "bob@example.org", DomainRequired: "off",
			SPA: "off", SSL: "on", Encryption: "SSL", AuthRequired: "on"},
	}
	const req = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>bob@example.org</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		t.Run(path, func(t *testing.T) {
			// Outlook is no browser, but a stray Origin must not block it.
			b.header = http.Header{"Origin": {"http://elsewhere.example"}}
			defer func() { b.header = http.Header{} }()
			hr, err := http.NewRequest("POST", b.base+path, strings.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			hr.Header.Set("Content-Type", "text/xml")
			r := b.do(hr)
			if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") {
				t.Fatalf("%d %q\n%s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			for _, ns := range []string{adResponseNS, adOutlookSchemaNS} {
				if !strings.Contains(r.Body, `xmlns="`+ns+`"`) {
					t.Errorf("response lacks namespace %s", ns)
				}
			}
			a := parseADAccount(t, r.Body)
			if a.AccountType != "email" || a.Action != "settings" || len(a.Protocols) != 2 ||
				a.Protocols[0] != want[0] || a.Protocols[1] != want[1] {
				t.Errorf("got %+v\nwant %+v", a, want)
			}
		})
	}
	// A loopback server without TLS (the demo): SSL off, Encryption None.
	t.Run("no TLS", func(t *testing.T) {
		f := newFixture(t, func(s *Server) {
			s.Mail = MailSettings{IMAPHost: "127.0.0.1", IMAPPort: 1143, IMAPSecurity: SecurityNone,
				SMTPPort: 1587, SMTPSecurity: SecurityNone}
		})
		b := f.browser()
		hr, err := http.NewRequest("POST", b.base+"/autodiscover/autodiscover.xml", strings.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		a := parseADAccount(t, b.do(hr).Body)
		want := []adProtocol{
			{Type: "IMAP", Server: "127.0.0.1", Port: 1143, LoginName: "bob@example.org", DomainRequired: "off",
				SPA: "off", SSL: "off", Encryption: "None", AuthRequired: "on"},
			{Type: "SMTP", Server: "127.0.0.1", Port: 1587, LoginName: "bob@example.org", DomainRequired: "off",
				SPA: "off", SSL: "off", Encryption: "None", AuthRequired: "on"},
		}
		if len(a.Protocols) != 2 || a.Protocols[0] != want[0] || a.Protocols[1] != want[1] {
			t.Errorf("got %+v\nwant %+v", a.Protocols, want)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, body := range []string{"", "not xml", "<Autodiscover><Request></Request></Autodiscover>"} {
			hr, _ := http.NewRequest("POST", b.base+"/autodiscover/autodiscover.xml", strings.NewReader(body))
			if r := b.do(hr); r.StatusCode != http.StatusBadRequest {
				t.Errorf("%q: %d", body, r.StatusCode)
			}
		}
		hr, _ := http.NewRequest("POST", b.base+"/autodiscover/autodiscover.xml", strings.NewReader(strings.Repeat("x", maxForm+1)))
		if r := b.do(hr); r.StatusCode != http.StatusBadRequest {
			t.Errorf("oversized body: %d", r.StatusCode)
		}
	})
}

// adAccount is the Account of an Autodiscover response.
type adAccount struct {
	AccountType string       `xml:"AccountType"`
	Action      string       `xml:"Action"`
	Protocols   []adProtocol `xml:"Protocol"`
}

// parseADAccount parses the Account of an Autodiscover response.
func parseADAccount(t *testing.T, body string) adAccount {
	t.Helper()
	var resp struct {
		Account adAccount `xml:"Response>Account"`
	}
	if err := xml.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return resp.Account
}

// TestPOP3Listed: with POP3 on, autoconfig and Autodiscover list it after
// IMAP (which clients prefer), and the result page shows its settings;
// with POP3 off none of them mentions it.
func TestPOP3Listed(t *testing.T) {
	const req = `<Autodiscover><Request><EMailAddress>bob@example.org</EMailAddress></Request></Autodiscover>`
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("pop3=%v", on), func(t *testing.T) {
			f := newFixture(t, func(s *Server) {
				s.Mail = MailSettings{IMAPHost: "mail.example.org", POP3: on, POP3Host: "pop.example.org",
					POP3Security: SecuritySTARTTLS}
			})
			b := f.browser()
			var cc clientConfig
			if err := xml.Unmarshal([]byte(b.get("/mail/config-v1.1.xml?emailaddress=bob@example.org").Body), &cc); err != nil {
				t.Fatal(err)
			}
			hr, err := http.NewRequest("POST", b.base+"/autodiscover/autodiscover.xml", strings.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			a := parseADAccount(t, b.do(hr).Body)
			f.account("bob@example.org", bobPW, false)
			b.signIn("bob@example.org", bobPW, "/app-passwords")
			page := b.post("/app-passwords", url.Values{"name": {"Phone"}, "scope": {"pop3", "smtp"}})
			expectStatus(t, page, http.StatusOK, "Your new app password")
			if shown := strings.Contains(page.Body, "pop.example.org"); shown != on {
				t.Errorf("the result page shows the POP3 server: %v, want %v", shown, on)
			}
			if !on {
				if len(cc.Provider.Incoming) != 1 || len(a.Protocols) != 2 {
					t.Errorf("POP3 off, yet listed: autoconfig %+v, Autodiscover %+v", cc.Provider.Incoming, a.Protocols)
				}
				return
			}
			wantAC := acServer{Type: "pop3", Hostname: "pop.example.org", Port: 110, SocketType: "STARTTLS",
				Authentication: "password-cleartext", Username: "%EMAILADDRESS%"}
			if len(cc.Provider.Incoming) != 2 || cc.Provider.Incoming[0].Type != "imap" || cc.Provider.Incoming[1] != wantAC {
				t.Errorf("autoconfig incoming %+v, want IMAP then %+v", cc.Provider.Incoming, wantAC)
			}
			wantAD := adProtocol{Type: "POP3", Server: "pop.example.org", Port: 110, LoginName: "bob@example.org",
				DomainRequired: "off", SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"}
			if len(a.Protocols) != 3 || a.Protocols[2] != wantAD {
				t.Errorf("Autodiscover %+v, want IMAP, SMTP, then %+v", a.Protocols, wantAD)
			}
		})
	}
}
