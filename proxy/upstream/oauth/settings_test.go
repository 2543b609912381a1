package oauth

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testidp"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSettingsMicrosoftPreset(t *testing.T) {
	src, err := Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "contoso.onmicrosoft.com",
		ClientID: "app", ClientSecret: "s"}.Source(nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := src.(*ClientCredentials)
	if cc.TokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" ||
		!slices.Equal(cc.Scopes, []string{"https://outlook.office365.com/.default"}) {
		t.Errorf("preset: %s %v", cc.TokenURL, cc.Scopes)
	}
}

// Each mode built from settings, with token_url pointing at the test IdP,
// fetches a token.
func TestSettingsBuildWorkingSources(t *testing.T) {
	idp := testidp.Start(t)
	idp.AddUser(alice)
	idp.AddClient("app", "file-secret")
	dir := t.TempDir()
	certFile, keyFile := testcert.WriteRSA(t, dir, "app-")
	cert, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	idp.AddCertificateClient("certapp", cert.Leaf)
	store := &memStore{tokens: map[string]string{alice: idp.Link("app", alice, "https://mail.google.com/")}}

	for name, s := range map[string]Settings{
		"client secret file": {Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t",
			ClientID: "app", ClientSecretFile: writeFile(t, "secret", []byte("file-secret\n")), TokenURL: idp.TokenURL()},
		"certificate": {Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t",
			ClientID: "certapp", CertificateFile: certFile, KeyFile: keyFile, TokenURL: idp.TokenURL()},
		"service account": {Mode: ModeServiceAccount, Provider: ProviderGoogle,
			ServiceAccountFile: writeFile(t, "sa.json", idp.NewServiceAccount(t, "sa@x.example", "1001")), TokenURL: idp.TokenURL()},
		"delegated": {Mode: ModeDelegated, Provider: ProviderGoogle, ClientID: "app", ClientSecret: "file-secret",
			TokenURL: idp.TokenURL()},
	} {
		t.Run(name, func(t *testing.T) {
			src, err := s.Source(store)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Fetch(t.Context(), alice); err != nil {
				t.Fatalf("fetch: %v", err)
			}
		})
	}
}

func TestSettingsErrorsNameTheKey(t *testing.T) {
	secretFile := writeFile(t, "secret", []byte("s"))
	for _, tc := range []struct {
		s   Settings
		key string
	}{
		{Settings{Mode: "password"}, "oauth.mode"},
		{Settings{Mode: ModeClientCredentials, Provider: "yahoo"}, "oauth.provider"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, ClientID: "a", ClientSecret: "s"}, "oauth.tenant"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientSecret: "s"}, "oauth.client_id"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientID: "a"}, "oauth.client_secret"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientID: "a",
			ClientSecret: "s", ClientSecretFile: secretFile}, "oauth.client_secret_file"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientID: "a",
			ClientSecretFile: "/nonexistent/secret"}, "oauth.client_secret_file"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientID: "a",
			CertificateFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}, "oauth.certificate_file"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderMicrosoft, Tenant: "t", ClientID: "a",
			CertificateFile: "/nonexistent/cert.pem"}, "oauth.key_file"},
		{Settings{Mode: ModeClientCredentials, Provider: ProviderGoogle, ClientID: "a", ClientSecret: "s"}, "oauth.mode"},
		{Settings{Mode: ModeClientCredentials, ClientID: "a", ClientSecret: "s"}, "oauth.token_url"},
		{Settings{Mode: ModeServiceAccount, Provider: ProviderGoogle}, "oauth.service_account_file"},
		{Settings{Mode: ModeServiceAccount, Provider: ProviderGoogle, ServiceAccountFile: secretFile}, "oauth.service_account_file"},
		{Settings{Mode: ModeServiceAccount, Provider: ProviderMicrosoft}, "oauth.mode"},
		{Settings{Mode: ModeDelegated, TokenURL: "http://127.0.0.1/t", ClientID: "a", ClientSecret: "s"}, "oauth.auth_url"},
	} {
		_, err := tc.s.Source(&memStore{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%+v: %v; want an error naming %s", tc.s, err, tc.key)
		}
	}
}

func TestSettingsNeverPrintTheSecret(t *testing.T) {
	s := Settings{Mode: ModeClientCredentials, ClientID: "app", ClientSecret: "hunter2"}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "app") {
			t.Errorf("printed settings: %s", out)
		}
	}
}
