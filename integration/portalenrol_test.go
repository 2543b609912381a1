package integration

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// reTOTPSecret is the setup key on the portal's enrolment page.
var reTOTPSecret = regexp.MustCompile(`(?s)id="totp-secret"[^>]*>(.*?)</p>`)

// enrolInPortal sets up user's authenticator the way its owner does, in
// pg's portal (passgateOpts.Portal) over HTTP: sign in with the primary
// password, open the setup page, type the code of its key back. The key
// is registered with the leak watch.
func enrolInPortal(t testing.TB, pg *Passgate, user, password string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	base := strings.TrimSuffix(pg.Portal, "/")
	page := func(resp *http.Response, err error) (string, string) {
		t.Helper()
		if err != nil {
			t.Fatalf("portal: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("portal %s: %v", resp.Request.URL.Path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("portal %s: status %d:\n%s", resp.Request.URL.Path, resp.StatusCode, b)
		}
		return resp.Request.URL.Path, html.UnescapeString(string(b))
	}

	if path, _ := page(c.PostForm(base+"/signin", url.Values{"username": {user}, "password": {password}})); path != "/app-passwords" {
		t.Fatalf("portal sign-in of %s ended on %s, want /app-passwords", user, path)
	}
	_, body := page(c.Get(base + "/mfa/setup"))
	m := reTOTPSecret.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no setup key on the enrolment page:\n%s", body)
	}
	secret := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " ")), "")
	leaks.secret(secret)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("TOTP code of the setup key: %v", err)
	}
	if _, body = page(c.PostForm(base+"/mfa/setup", url.Values{"code": {code}})); !strings.Contains(body, "Save your recovery codes") {
		t.Fatalf("enrolment of %s: no recovery codes page:\n%s", user, body)
	}
}
