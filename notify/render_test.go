package notify

import (
	"bytes"
	"io"
	"mime"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

var t0 = time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)

// record is an audit record of event as its writer makes it.
func record(event string) store.AuditRecord {
	rec := store.AuditRecord{Time: t0, Username: "alice@example.org", Result: event,
		Protocol: "imap", Remote: netip.MustParseAddrPort("192.0.2.7:50000"),
		AppPasswordID: "p1", AppPasswordName: "Phone"}
	switch event {
	case ResultDeviceFirstUse, ResultDeviceDrift, ResultDeviceRefused:
		rec.Device = &store.Device{Client: "Thunderbird 115", TLS: "t13d1516h2",
			Network: netip.MustParsePrefix("192.0.2.0/24")}
	case account.ResultMFAReset, account.ResultAppPasswordsDeleted:
		rec.Protocol, rec.Actor = account.ProtocolAdmin, "cli:root"
	case account.ResultAppPasswordRetireWarning:
		rec.RemovalOn = t0.Add(14 * 24 * time.Hour)
	}
	return rec
}

// Every event renders in every language, names the password where it
// has one, and shows the device of device events.
func TestEveryEventRenders(t *testing.T) {
	if len(Events()) != 8 {
		t.Fatalf("events %v, want the 8 of issue 16", Events())
	}
	for _, lang := range Languages {
		for _, ev := range Events() {
			t.Run(lang+"/"+ev, func(t *testing.T) {
				rec := record(ev)
				m, err := Render(lang, dataOf(rec, "https://mail.example.org/"))
				if err != nil {
					t.Fatal(err)
				}
				if m.Lang != lang || m.Subject == "" || strings.ContainsAny(m.Subject, "\r\n") {
					t.Errorf("lang %q subject %q", m.Lang, m.Subject)
				}
				for _, part := range []string{m.Text, m.HTML} {
					if !strings.Contains(part, "alice@example.org") || !strings.Contains(part, "https://mail.example.org/") {
						t.Errorf("a part lacks the account or the portal:\n%s", part)
					}
					if strings.Contains(part, "<no value>") || strings.Contains(part, "0001") {
						t.Errorf("a part shows a missing value:\n%s", part)
					}
				}
				if rec.Device != nil {
					for _, want := range []string{"Thunderbird 115", "t13d1516h2", "192.0.2.0/24", "192.0.2.7"} {
						if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
							t.Errorf("device event without %q:\n%s", want, m.Text)
						}
					}
				}
				if ev != account.ResultMFAReset && ev != account.ResultAppPasswordsDeleted && !strings.Contains(m.Subject+m.Text, "Phone") {
					t.Errorf("the password's name is missing:\n%s\n%s", m.Subject, m.Text)
				}
				if ev == account.ResultAppPasswordRetireWarning && !strings.Contains(m.Text, "21") {
					t.Errorf("the removal day (21 December) is missing:\n%s", m.Text)
				}
			})
		}
	}
}

// The two languages say different things (French is not English), and
// French dates are written in French.
func TestFrenchIsFrench(t *testing.T) {
	d := dataOf(record(ResultDeviceDrift), "")
	en, _ := Render("en", d)
	fr, _ := Render("fr", d)
	if en.Subject == fr.Subject || !strings.Contains(fr.Text, "lundi 7 décembre 2026 à 09:30") ||
		!strings.Contains(en.Text, "Monday 7 December 2026 at 09:30") {
		t.Errorf("en %q / fr %q:\n%s", en.Subject, fr.Subject, fr.Text)
	}
	if m, _ := Render("de", d); m.Lang != "en" || m.Subject != en.Subject {
		t.Errorf("an unknown language gives %q %q, want the default en", m.Lang, m.Subject)
	}
}

// What an attacker controls (the password's name, the client's ID) is
// escaped in the HTML part, and cannot add a header line to the subject.
func TestHTMLEscaped(t *testing.T) {
	rec := record(ResultDeviceDrift)
	rec.AppPasswordName = `<script>alert(1)</script>`
	rec.Device.Client = `"><img src=x onerror=alert(2)>`
	for _, lang := range Languages {
		m, err := Render(lang, dataOf(rec, ""))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.HTML, "<script>") || strings.Contains(m.HTML, "<img") {
			t.Errorf("%s: unescaped markup in the HTML part:\n%s", lang, m.HTML)
		}
		if !strings.Contains(m.HTML, "&lt;script&gt;") {
			t.Errorf("%s: the name is not shown escaped:\n%s", lang, m.HTML)
		}
	}
	rec.AppPasswordName = "Phone\r\nBcc: victim@example.net"
	m, _ := Render("en", dataOf(rec, ""))
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject %q holds a line break", m.Subject)
	}
}

// A composed message parses back: headers, the encoded French subject,
// and both parts of the multipart/alternative.
func TestComposeParses(t *testing.T) {
	m, err := Render("fr", dataOf(record(account.ResultAppPasswordCreated), ""))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := compose("passgate@example.org", "alice@example.org", m, t0)
	if err != nil {
		t.Fatal(err)
	}
	head := string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
	if strings.Contains(head, "«") {
		t.Errorf("a raw non-ASCII header:\n%s", head)
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	subj, _ := h.Subject()
	date, _ := h.Date()
	id, _ := h.MessageID()
	if subj != m.Subject || !date.Equal(t0) || !strings.HasSuffix(id, "@example.org") ||
		h.Get("Auto-Submitted") != "auto-generated" || h.Get("MIME-Version") != "1.0" {
		t.Errorf("headers:\n%s", head)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "multipart/alternative" {
		t.Errorf("content type %q", h.Get("Content-Type"))
	}
	var types []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		body, _ := io.ReadAll(p.Body)
		types = append(types, ct)
		if !strings.Contains(string(body), "Un nouveau mot de passe d'application") {
			t.Errorf("%s part:\n%s", ct, body)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v", types)
	}
}

func TestMatch(t *testing.T) {
	for pref, want := range map[string]string{
		"fr": "fr", "fr-CA": "fr", "de-CH, fr;q=0.8, en;q=0.5": "fr", "en-GB,en;q=0.9": "en",
		"de": "", "": "", "garbage;;q=x": "",
	} {
		if got := Match(pref); got != want {
			t.Errorf("Match(%q) = %q, want %q", pref, got, want)
		}
	}
}
