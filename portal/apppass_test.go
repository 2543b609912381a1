package portal

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

func TestAppPasswordLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "You have no app passwords yet.", "Create an app password")

	r := b.post("/app-passwords", url.Values{"name": {"Outlook"}, "scope": {"imap"}, "expires": {"2026-04-30"}})
	expectStatus(t, r, http.StatusOK, "Your new app password", "“Outlook”", "shown only once",
		"imap.example.org", "993", "SSL/TLS", "smtp.example.org", "587", "STARTTLS", "Download profile (.mobileconfig)")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("result page Cache-Control %q", cc)
	}
	pw := textOf(t, rePassword, r.Body)
	if len(strings.Fields(pw)) != 4 || len(authn.NormalizeSecret(pw)) != authn.AppPasswordLen {
		t.Fatalf("password on the page: %q", pw)
	}
	if !strings.Contains(r.Body, `data-copy="`+authn.NormalizeSecret(pw)+`"`) {
		t.Error("the copy button does not carry the password")
	}
	ctx := context.Background()
	verify := func(scope store.Scope) authn.Result {
		d, err := f.v.Verify(ctx, authn.Attempt{Username: "bob@example.org", Secret: pw, Protocol: scope})
		if err != nil {
			t.Fatal(err)
		}
		return d.Result
	}
	if got := verify(store.ScopeIMAP); got != authn.OK {
		t.Fatalf("IMAP login with the new password: %s", got)
	}
	if got := verify(store.ScopeSMTP); got != authn.ScopeDenied {
		t.Errorf("SMTP login with an IMAP-only password: %s", got)
	}
	list := f.appPasswords("bob@example.org")
	if len(list) != 1 || list[0].Name != "Outlook" || !list[0].Expires.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stored: %+v", list)
	}

	// The list shows it, not its password.
	r = b.get("/app-passwords")
	expectStatus(t, r, http.StatusOK, "Outlook", "IMAP", "2026-05-01", "/app-passwords/"+list[0].ID+"/revoke")
	if strings.Contains(r.Body, pw) || strings.Contains(r.Body, authn.NormalizeSecret(pw)) {
		t.Error("the list page shows the password")
	}

	// Revoke: a confirmation page, then the POST.
	r = b.get("/app-passwords/" + list[0].ID + "/revoke")
	expectStatus(t, r, http.StatusOK, "Revoke “Outlook”?", "signed out at once")
	if n := len(f.appPasswords("bob@example.org")); n != 1 {
		t.Fatal("the confirmation page revoked")
	}
	expectRedirect(t, b.post("/app-passwords/"+list[0].ID+"/revoke", nil), "/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "Revoked “Outlook”", "You have no app passwords yet.")
	if got := verify(store.ScopeIMAP); got == authn.OK {
		t.Error("the revoked password still logs in")
	}
	expectRedirect(t, b.post("/app-passwords/"+list[0].ID+"/revoke", nil), "/app-passwords")
	expectStatus(t, b.get("/app-passwords"), http.StatusOK, "already revoked")

	recs, err := f.db.RecentAudit(ctx, "bob@example.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, r := range recs {
		results = append(results, r.Result)
	}
	if got := strings.Join(results, ","); !strings.Contains(got, "app-password-revoked") || !strings.Contains(got, "app-password-created") {
		t.Errorf("audit results %s", got)
	}
	if strings.Contains(f.log.String(), authn.NormalizeSecret(pw)) || strings.Contains(f.log.String(), pw) {
		t.Error("the app password appears in the log")
	}
}

func TestCreateAppPasswordValidation(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	if _, err := f.setup().CreateAppPassword(context.Background(), testActor, "bob@example.org", "Phone", account.AppPasswordOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		form url.Values
		msg  string
	}{
		{"no name", url.Values{"name": {"  "}, "scope": {"imap"}}, "Give the app password a name"},
		{"no scope", url.Values{"name": {"Mac"}}, "Choose at least one of IMAP, SMTP, POP3 and ManageSieve"},
		{"unknown scope only", url.Values{"name": {"Mac"}, "scope": {"nntp"}}, "Choose at least one"},
		{"past expiry", url.Values{"name": {"Mac"}, "scope": {"imap"}, "expires": {"2026-03-01"}}, "must be in the future"},
		{"bad date", url.Values{"name": {"Mac"}, "scope": {"imap"}, "expires": {"soon"}}, "not a date"},
		{"duplicate name", url.Values{"name": {"phone"}, "scope": {"imap"}}, "already have an app password with that name"},
		{"long name", url.Values{"name": {strings.Repeat("x", 65)}, "scope": {"imap"}}, "Longer than 64 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/app-passwords", tc.form)
			expectStatus(t, r, http.StatusUnprocessableEntity, tc.msg)
			if n := len(f.appPasswords("bob@example.org")); n != 1 {
				t.Fatalf("%d app passwords after a refused create", n)
			}
			// The form keeps what was typed.
			if name := tc.form.Get("name"); strings.TrimSpace(name) != "" && !strings.Contains(r.Body, `value="`+strings.TrimSpace(name)+`"`) {
				t.Error("the form lost the name")
			}
		})
	}
}

// plist is enough of a property list to check a profile.
type plist struct {
	Dict plistXMLDict `xml:"dict"`
}

type plistXMLDict struct {
	Items []plistItem `xml:",any"`
}

type plistItem struct {
	XMLName xml.Name
	Text    string         `xml:",chardata"`
	Dicts   []plistXMLDict `xml:"dict"`
}

// values flattens a dict into key -> value text; nested dicts are merged
// with the key prefix "payload.".
func (d plistXMLDict) values(prefix string, out map[string]string) {
	var key string
	for _, it := range d.Items {
		switch it.XMLName.Local {
		case "key":
			key = it.Text
		case "array":
			for _, sub := range it.Dicts {
				sub.values("payload.", out)
			}
		case "true", "false":
			out[prefix+key] = it.XMLName.Local
		default:
			out[prefix+key] = it.Text
		}
	}
}

func TestMobileconfigDownload(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	f.account("eve@example.org", "eve primary password", false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	r := b.post("/app-passwords", url.Values{"name": {"iPhone & iPad"}, "scope": {"imap", "smtp"}})
	expectStatus(t, r, http.StatusOK, "Your new app password")
	pw := authn.NormalizeSecret(textOf(t, rePassword, r.Body))
	token := reToken.FindStringSubmatch(r.Body)
	if token == nil {
		t.Fatal("no download token on the result page")
	}
	if strings.Contains(r.Body, "/app-passwords/profile?") || strings.Contains(r.Body, "token=") {
		t.Error("the download token is in a URL")
	}

	// Another user cannot use the token.
	eve := f.browser()
	eve.signIn("eve@example.org", "eve primary password", "/app-passwords")
	expectStatus(t, eve.post("/app-passwords/profile", url.Values{"token": {token[1]}}), http.StatusGone)

	r = b.post("/app-passwords/profile", url.Values{"token": {token[1]}})
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		r.Header.Get("Content-Disposition") != `attachment; filename="passgate-iPhone-iPad.mobileconfig"` ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download: %d %v", r.StatusCode, r.Header)
	}
	var p plist
	if err := xml.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("profile is not XML: %v\n%s", err, r.Body)
	}
	got := map[string]string{}
	p.Dict.values("", got)
	want := map[string]string{
		"PayloadType":                                    "Configuration",
		"payload.PayloadType":                            "com.apple.mail.managed",
		"payload.EmailAccountType":                       "EmailTypeIMAP",
		"payload.EmailAddress":                           "bob@example.org",
		"payload.IncomingMailServerHostName":             "imap.example.org",
		"payload.IncomingMailServerPortNumber":           "993",
		"payload.IncomingMailServerUseSSL":               "true",
		"payload.IncomingMailServerUsername":             "bob@example.org",
		"payload.IncomingPassword":                       pw,
		"payload.OutgoingMailServerHostName":             "smtp.example.org",
		"payload.OutgoingMailServerPortNumber":           "587",
		"payload.OutgoingMailServerUseSSL":               "false",
		"payload.OutgoingPasswordSameAsIncomingPassword": "true",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["PayloadUUID"] == got["payload.PayloadUUID"] || len(got["PayloadUUID"]) != 36 {
		t.Errorf("UUIDs %q %q", got["PayloadUUID"], got["payload.PayloadUUID"])
	}
	expectStatus(t, b.post("/app-passwords/profile", url.Values{"token": {token[1]}}), http.StatusGone, "can be downloaded once")

	// Tokens expire.
	r = b.post("/app-passwords", url.Values{"name": {"Later"}, "scope": {"imap"}})
	token = reToken.FindStringSubmatch(r.Body)
	f.clock.Advance(profileTTL + time.Second)
	expectStatus(t, b.post("/app-passwords/profile", url.Values{"token": {token[1]}}), http.StatusGone)
}

// TestNoTLSSettings: for a loopback server without TLS (the demo) the result
// page and the .mobileconfig tell the mail app to use no TLS, so that it
// can connect.
func TestNoTLSSettings(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.Mail = MailSettings{IMAPHost: "127.0.0.1", IMAPPort: 1143, IMAPSecurity: SecurityNone,
			SMTPPort: 1587, SMTPSecurity: SecurityNone}
	})
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	r := b.post("/app-passwords", url.Values{"name": {"Mac"}, "scope": {"imap", "smtp"}})
	expectStatus(t, r, http.StatusOK, "Your new app password", "127.0.0.1", "1143", "1587",
		`<th scope="row">Security</th><td>None (no TLS`)
	for _, tls := range []string{"STARTTLS", "SSL/TLS"} {
		if strings.Contains(r.Body, tls) {
			t.Errorf("the result page says %s for a server without TLS", tls)
		}
	}
	token := reToken.FindStringSubmatch(r.Body)
	if token == nil {
		t.Fatal("no download token on the result page")
	}
	r = b.post("/app-passwords/profile", url.Values{"token": {token[1]}})
	var p plist
	if err := xml.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("profile is not XML: %v\n%s", err, r.Body)
	}
	got := map[string]string{}
	p.Dict.values("", got)
	for k, v := range map[string]string{
		"payload.IncomingMailServerHostName":   "127.0.0.1",
		"payload.IncomingMailServerPortNumber": "1143",
		"payload.IncomingMailServerUseSSL":     "false",
		"payload.OutgoingMailServerHostName":   "127.0.0.1",
		"payload.OutgoingMailServerPortNumber": "1587",
		"payload.OutgoingMailServerUseSSL":     "false",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestChangePassword(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob@example.org", bobPW, false)
	if _, err := f.setup().CreateAppPassword(context.Background(), testActor, "bob@example.org", "Phone", account.AppPasswordOptions{}); err != nil {
		t.Fatal(err)
	}
	a, other := f.browser(), f.browser()
	a.signIn("bob@example.org", bobPW, "/app-passwords")
	other.signIn("bob@example.org", bobPW, "/app-passwords")

	const next = "a brand new password"
	tests := []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"wrong current", url.Values{"current": {"nope nope nope"}, "new": {next}, "confirm": {next}}, http.StatusUnauthorized, "current password is not right"},
		{"mismatch", url.Values{"current": {bobPW}, "new": {next}, "confirm": {next + "x"}}, http.StatusUnprocessableEntity, "differ"},
		{"too short", url.Values{"current": {bobPW}, "new": {"short"}, "confirm": {"short"}}, http.StatusUnprocessableEntity, "at least 8 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectStatus(t, a.post("/account/password", tc.form), tc.status, tc.msg)
		})
	}
	expectStatus(t, a.get("/account"), http.StatusOK, "Changing your password also deletes all your app passwords")
	expectRedirect(t, a.post("/account/password", url.Values{"current": {bobPW}, "new": {next}, "confirm": {next}}), "/account")
	expectStatus(t, a.get("/account"), http.StatusOK, "Your password was changed", "password changed")
	expectRedirect(t, other.get("/app-passwords"), "/signin")
	if n := len(f.appPasswords("bob@example.org")); n != 0 {
		t.Errorf("%d app passwords survived the password change", n)
	}
	d, err := f.v.Verify(context.Background(), authn.Attempt{Username: "bob@example.org", Secret: next, Protocol: store.ScopeIMAP})
	if err != nil || d.Result != authn.OK {
		t.Errorf("new password: %v %v", d.Result, err)
	}
	if strings.Contains(f.log.String(), next) {
		t.Error("the new password is in the log")
	}
}

// TestStoreFailure: a failing store is a 503 page, never a crash or a
// leaked error.
func TestStoreFailure(t *testing.T) {
	var fail atomic.Bool
	f := newFixture(t, func(s *Server) { s.Store = failingStore{Store: s.Store, fail: &fail} })
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	fail.Store(true)
	r := b.get("/app-passwords")
	expectStatus(t, r, http.StatusServiceUnavailable, "temporarily unavailable")
	if strings.Contains(r.Body, "disk on fire") {
		t.Error("the store error is shown to the user")
	}
}

// failingStore fails GetKV while fail is set.
type failingStore struct {
	Store
	fail *atomic.Bool
}

func (s failingStore) GetKV(ctx context.Context, key string) ([]byte, error) {
	if s.fail.Load() {
		return nil, errors.New("disk on fire")
	}
	return s.Store.GetKV(ctx, key)
}

// The per-account cap (authn.max_app_passwords) refuses one more password
// with a form error, and keeps what was typed.
func TestCreateAppPasswordCap(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.Accounts = &account.Service{Store: s.Store.(account.Store), Verifier: s.Verifier, Logger: s.Logger,
			Now: s.Now, MaxAppPasswords: 2}
	})
	f.account("bob@example.org", bobPW, false)
	b := f.browser()
	b.signIn("bob@example.org", bobPW, "/app-passwords")
	for _, name := range []string{"Phone", "Laptop"} {
		expectStatus(t, b.post("/app-passwords", url.Values{"name": {name}, "scope": {"imap"}}), http.StatusOK, "Your new app password")
	}
	r := b.post("/app-passwords", url.Values{"name": {"Tablet"}, "scope": {"imap"}})
	expectStatus(t, r, http.StatusUnprocessableEntity, "You already have 2 app passwords, the most allowed", `value="Tablet"`)
	if n := len(f.appPasswords("bob@example.org")); n != 2 {
		t.Errorf("%d app passwords after the refused third, want 2", n)
	}
}
