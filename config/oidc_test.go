package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// withPortal is base with a running portal (listener, URL, key), so that
// the OAuth sections' needs are met; cases append sections after it.
func withPortal(t *testing.T) (data, dir string) {
	t.Helper()
	dir = fixture(t)
	writeFile(t, filepath.Join(dir, "portal-key"), hexKey+"\n")
	writeFile(t, filepath.Join(dir, "oidc-secret"), "  from-file\n")
	return base + lines(`[portal]`, `url = "https://mail.example.org"`, `listen = "127.0.0.1:8080"`,
		`key_file = "portal-key"`), dir
}

func TestPortalOIDCDefaults(t *testing.T) {
	data, dir := withPortal(t)
	c, err := Parse([]byte(data+lines(`[portal.oidc]`,
		`issuer = "https://login.microsoftonline.com/0b7e2c41-3f0e-4e6e-9f3a-1d2c3b4a5e6f/v2.0"`,
		`client_id = "portal-app"`, `client_secret_file = "oidc-secret"`,
		`allowed_domains = [" Example.ORG "]`)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Portal.OIDC
	if !o.Enabled() || o.ClientSecret != "from-file" || o.ClientSecretFrom != "file "+filepath.Join(dir, "oidc-secret") ||
		o.UsernameClaim != "email" || !slices.Equal(o.Scopes, []string{"openid", "email", "profile"}) ||
		o.ButtonLabel != "Sign in with Microsoft" || !slices.Equal(o.AllowedDomains, []string{"example.org"}) {
		t.Errorf("portal.oidc = %v", o)
	}
	for _, out := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", c.Portal), fmt.Sprintf("%#v", o)} {
		if strings.Contains(out, "from-file") {
			t.Errorf("printed section shows the secret: %s", out)
		}
	}
	// An environment variable wins; Google's issuer names its button.
	c, err = Parse([]byte(data+lines(`[portal.oidc]`, `issuer = "https://accounts.google.com"`, `client_id = "x"`,
		`client_secret = "inline"`)), dir, envMap(map[string]string{oidcSecretEnv: "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Portal.OIDC; o.ClientSecret != "from-env" || o.ButtonLabel != "Sign in with Google" {
		t.Errorf("portal.oidc = %v", o)
	}
	// No section, or an empty one, is off.
	for _, extra := range []string{"", lines(`[portal.oidc]`)} {
		c, err := Parse([]byte(data+extra), dir, nil)
		if err != nil || c.Portal.OIDC.Enabled() {
			t.Errorf("%q: enabled %v, err %v", extra, c != nil && c.Portal.OIDC.Enabled(), err)
		}
	}
}

func TestPortalOIDCErrorsNameTheKey(t *testing.T) {
	data, dir := withPortal(t)
	good := []string{`issuer = "https://idp.example.org"`, `client_id = "portal"`, `client_secret = "s"`}
	section := func(replace map[int]string, extra ...string) string {
		l := slices.Clone(good)
		for i, v := range replace {
			l[i] = v
		}
		return data + lines(append(append([]string{`[portal.oidc]`}, l...), extra...)...)
	}
	for _, tc := range []struct {
		name, data, key, msg string
	}{
		{"no issuer", section(map[int]string{0: ``}), "portal.oidc.issuer", "required"},
		{"http issuer", section(map[int]string{0: `issuer = "http://idp.example.org"`}), "portal.oidc.issuer", "use https"},
		{"relative issuer", section(map[int]string{0: `issuer = "idp.example.org"`}), "portal.oidc.issuer", "not an absolute URL"},
		{"no client id", section(map[int]string{1: ``}), "portal.oidc.client_id", "required"},
		{"no secret", section(map[int]string{2: ``}), "portal.oidc.client_secret", "required"},
		{"two secrets", section(nil, `client_secret_file = "oidc-secret"`), "portal.oidc.client_secret_file", "only one"},
		{"missing secret file", section(map[int]string{2: `client_secret_file = "nope"`}), "portal.oidc.client_secret_file", "no such file"},
		{"no openid", section(nil, `scopes = ["email"]`), "portal.oidc.scopes", "openid"},
		{"scope with space", section(nil, `scopes = ["openid email"]`), "portal.oidc.scopes", "not a scope"},
		{"bad claim", section(nil, `username_claim = "e mail"`), "portal.oidc.username_claim", "not a claim name"},
		{"bad domain", section(nil, `allowed_domains = ["@example.org"]`), "portal.oidc.allowed_domains", "not a domain"},
		{"empty amr", section(nil, `required_amr = [""]`), "portal.oidc.required_amr", "non-empty"},
		{"admin claim alone", section(nil, `admin_claim = "roles"`), "portal.oidc.admin_value", "required"},
		{"admin value alone", section(nil, `admin_value = "admins"`), "portal.oidc.admin_claim", "required"},
		{"long label", section(nil, `button_label = "`+strings.Repeat("x", 61)+`"`), "portal.oidc.button_label", "at most 60"},
		{"no portal url", base + lines(append([]string{`[portal.oidc]`}, good...)...), "portal.oidc.issuer", "needs portal.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), dir, nil)
			e := errorFor(t, err, tc.key)
			if !strings.Contains(e.Msg, tc.msg) || e.Line == 0 {
				t.Errorf("error %v, want line and %q", e, tc.msg)
			}
			if strings.Contains(err.Error(), "from-file") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestOAuthSection(t *testing.T) {
	data, dir := withPortal(t)
	writeFile(t, filepath.Join(dir, "oauth-secret"), "file-secret\n")
	certFile, keyFile := testcert.WriteRSA(t, dir, "app-")
	c, err := Parse([]byte(data+lines(`[oauth]`, `mode = "delegated"`, `provider = "microsoft"`, `tenant = "contoso.onmicrosoft.com"`,
		`client_id = "app"`, `client_secret_file = "oauth-secret"`)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := oauth.Settings{Mode: "delegated", Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "app",
		ClientSecret: "file-secret"}
	if !equalSettings(c.OAuth, want) {
		t.Errorf("oauth = %v, want %v", c.OAuth, want)
	}
	// The environment wins over the file, which is then not read.
	c, err = Parse([]byte(data+lines(`[oauth]`, `mode = "delegated"`, `provider = "google"`,
		`client_id = "app"`, `client_secret_file = "nope"`)), dir, envMap(map[string]string{oauthSecretEnv: "env-secret"}))
	if err != nil || c.OAuth.ClientSecret != "env-secret" || c.OAuth.ClientSecretFile != "" {
		t.Errorf("env secret: %v, %v", c, err)
	}
	// A certificate, with paths relative to the file.
	c, err = Parse([]byte(data+lines(`[oauth]`, `mode = "client_credentials"`, `provider = "microsoft"`, `tenant = "t"`,
		`client_id = "app"`, `certificate_file = "`+filepath.Base(certFile)+`"`, `key_file = "`+filepath.Base(keyFile)+`"`,
		`scopes = ["https://outlook.office365.com/.default"]`)), dir, nil)
	if err != nil || c.OAuth.CertificateFile != certFile || c.OAuth.KeyFile != keyFile {
		t.Errorf("certificate: %v, %v", c, err)
	}
	// No section, or an empty one, is off.
	c, err = Parse([]byte(data+lines(`[oauth]`)), dir, nil)
	if err != nil || c.OAuth.Mode != "" {
		t.Errorf("empty [oauth]: %v, %v", c, err)
	}
}

func equalSettings(a, b oauth.Settings) bool {
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) && a.ClientSecret == b.ClientSecret
}

func TestOAuthErrorsNameTheKey(t *testing.T) {
	data, dir := withPortal(t)
	for _, tc := range []struct {
		name, section, key, msg string
	}{
		{"no mode", lines(`client_id = "app"`), "oauth.mode", "required"},
		{"bad mode", lines(`mode = "password"`), "oauth.mode", "not client_credentials"},
		{"bad provider", lines(`mode = "client_credentials"`, `provider = "yahoo"`, `client_id = "a"`, `client_secret = "s"`), "oauth.provider", "not microsoft or google"},
		{"no tenant", lines(`mode = "client_credentials"`, `provider = "microsoft"`, `client_id = "a"`, `client_secret = "s"`), "oauth.tenant", "required"},
		{"no client id", lines(`mode = "client_credentials"`, `provider = "microsoft"`, `tenant = "t"`, `client_secret = "s"`), "oauth.client_id", "required"},
		{"no secret", lines(`mode = "client_credentials"`, `provider = "microsoft"`, `tenant = "t"`, `client_id = "a"`), "oauth.client_secret", "required"},
		{"empty secret file", lines(`mode = "client_credentials"`, `provider = "microsoft"`, `tenant = "t"`, `client_id = "a"`, `client_secret_file = "empty-secret"`), "oauth.client_secret_file", "empty"},
		{"google app-only", lines(`mode = "client_credentials"`, `provider = "google"`, `client_id = "a"`, `client_secret = "s"`), "oauth.mode", "service_account"},
		{"no key file", lines(`mode = "service_account"`, `provider = "google"`), "oauth.service_account_file", "required"},
		{"http token url", lines(`mode = "client_credentials"`, `client_id = "a"`, `client_secret = "s"`, `token_url = "http://idp.example.org/token"`), "oauth.token_url", "https"},
		{"bad scope", lines(`mode = "delegated"`, `provider = "google"`, `client_id = "a"`, `client_secret = "s"`, `scopes = [""]`), "oauth.scopes", "not a scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(data+"[oauth]\n"+tc.section), dir, nil)
			e := errorFor(t, err, tc.key)
			if !strings.Contains(e.Msg, tc.msg) || e.Line == 0 {
				t.Errorf("error %v, want a line and %q", e, tc.msg)
			}
			if strings.Contains(err.Error(), `"s"`) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
	// Delegated links need the portal.
	_, err := Parse([]byte(base+lines(`[oauth]`, `mode = "delegated"`, `provider = "google"`, `client_id = "a"`, `client_secret = "s"`)), dir, nil)
	if e := errorFor(t, err, "oauth.mode"); !strings.Contains(e.Msg, "portal") {
		t.Errorf("delegated without a portal: %v", e)
	}
}
