package oauth

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"
)

// Modes: where tokens come from.
const (
	ModeClientCredentials = "client_credentials"
	ModeServiceAccount    = "service_account"
	ModeDelegated         = "delegated"
)

// Providers with presets (endpoints and default scopes).
const (
	ProviderMicrosoft = "microsoft"
	ProviderGoogle    = "google"
)

// Default scopes per provider and mode.
var (
	// Microsoft app-only access to Exchange Online (IMAP.AccessAsApp,
	// SMTP.SendAsApp are granted on this resource).
	MicrosoftAppScopes = []string{"https://outlook.office365.com/.default"}
	// Microsoft delegated access; offline_access brings a refresh token.
	MicrosoftUserScopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All",
		"https://outlook.office.com/SMTP.Send", "offline_access"}
	// Google's one scope for IMAP, POP and SMTP.
	GoogleMailScopes = []string{"https://mail.google.com/"}
)

// Settings are the [oauth] section of the config file (package config
// decodes it into this type, by the toml tags). Source validates them and
// reads the files they name.
type Settings struct {
	Mode     string `toml:"mode"`     // client_credentials | service_account | delegated
	Provider string `toml:"provider"` // microsoft | google | "" (token_url etc. given)
	Tenant   string `toml:"tenant"`   // Microsoft directory (tenant) id or domain

	ClientID         string `toml:"client_id"`
	ClientSecret     string `toml:"client_secret"` // prefer client_secret_file
	ClientSecretFile string `toml:"client_secret_file"`
	CertificateFile  string `toml:"certificate_file"` // PEM, for a client assertion
	KeyFile          string `toml:"key_file"`         // the certificate's PEM RSA key

	ServiceAccountFile string `toml:"service_account_file"` // Google JSON key

	Scopes   []string `toml:"scopes"`    // if empty, the provider's for the mode
	TokenURL string   `toml:"token_url"` // overrides the provider's (tests)
	AuthURL  string   `toml:"auth_url"`  // overrides the provider's (delegated link)
}

// Source builds the token source the settings describe. store keeps
// refresh tokens in delegated mode and is ignored otherwise. Errors name
// the config key.
func (s Settings) Source(store RefreshStore) (Source, error) {
	switch s.Mode {
	case ModeClientCredentials:
		return s.clientCredentials()
	case ModeServiceAccount:
		return s.serviceAccount()
	case ModeDelegated:
		return s.delegated(store)
	}
	return nil, fmt.Errorf("oauth.mode: %q is not client_credentials, service_account or delegated", s.Mode)
}

func (s Settings) clientCredentials() (Source, error) {
	if s.Provider == ProviderGoogle {
		return nil, errors.New("oauth.mode: google has no client_credentials access to mail; use service_account")
	}
	ep, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	if s.ClientID == "" {
		return nil, errors.New("oauth.client_id: required")
	}
	c := &ClientCredentials{TokenURL: ep.TokenURL, ClientID: s.ClientID, Scopes: s.scopes(MicrosoftAppScopes)}
	switch {
	case s.CertificateFile != "" || s.KeyFile != "":
		if s.KeyFile == "" {
			return nil, errors.New("oauth.key_file: required with oauth.certificate_file")
		}
		if s.CertificateFile == "" {
			return nil, errors.New("oauth.certificate_file: required with oauth.key_file")
		}
		if s.ClientSecret != "" || s.ClientSecretFile != "" {
			return nil, errors.New("oauth.client_secret: give a client secret or a certificate, not both")
		}
		if c.Certificate, err = LoadCertificate(s.CertificateFile, s.KeyFile); err != nil {
			return nil, fmt.Errorf("oauth.certificate_file: %w", err)
		}
	default:
		if c.ClientSecret, err = s.secret(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (s Settings) serviceAccount() (Source, error) {
	if s.Provider == ProviderMicrosoft {
		return nil, errors.New("oauth.mode: microsoft has no service accounts; use client_credentials")
	}
	if s.ServiceAccountFile == "" {
		return nil, errors.New("oauth.service_account_file: required")
	}
	data, err := os.ReadFile(s.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("oauth.service_account_file: %w", err)
	}
	sa, err := NewServiceAccount(data, s.scopes(GoogleMailScopes)...)
	if err != nil {
		return nil, fmt.Errorf("oauth.service_account_file: %w", err)
	}
	if s.TokenURL != "" {
		sa.Config.TokenURL = s.TokenURL
	}
	return sa, nil
}

func (s Settings) delegated(store RefreshStore) (Source, error) {
	if store == nil {
		return nil, errors.New("oauth.mode: delegated needs a refresh token store")
	}
	cfg, err := s.DelegatedConfig()
	if err != nil {
		return nil, err
	}
	return &Delegated{Store: store, Config: cfg}, nil
}

// DelegatedConfig is the client of delegated mode: the one the portal's
// link flow sends users to (its RedirectURL is the portal's to set), and
// the one Delegated refreshes tokens with.
func (s Settings) DelegatedConfig() (*oauth2.Config, error) {
	if s.Mode != ModeDelegated {
		return nil, fmt.Errorf("oauth.mode: %q is not delegated", s.Mode)
	}
	ep, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	if ep.AuthURL == "" {
		return nil, errors.New("oauth.auth_url: required without a provider")
	}
	if s.ClientID == "" {
		return nil, errors.New("oauth.client_id: required")
	}
	secret, err := s.secret()
	if err != nil {
		return nil, err
	}
	defaults := MicrosoftUserScopes
	if s.Provider == ProviderGoogle {
		defaults = GoogleMailScopes
	}
	return &oauth2.Config{ClientID: s.ClientID, ClientSecret: secret, Endpoint: ep, Scopes: s.scopes(defaults)}, nil
}

// endpoint is the provider's, with token_url and auth_url overrides.
func (s Settings) endpoint() (oauth2.Endpoint, error) {
	var ep oauth2.Endpoint
	switch s.Provider {
	case ProviderMicrosoft:
		if s.Tenant == "" {
			return ep, errors.New("oauth.tenant: required for microsoft")
		}
		ep = endpoints.AzureAD(s.Tenant)
	case ProviderGoogle:
		ep = endpoints.Google
	case "":
	default:
		return ep, fmt.Errorf("oauth.provider: %q is not microsoft or google", s.Provider)
	}
	if s.TokenURL != "" {
		ep.TokenURL = s.TokenURL
	}
	if s.AuthURL != "" {
		ep.AuthURL = s.AuthURL
	}
	if ep.TokenURL == "" {
		return ep, errors.New("oauth.token_url: required without a provider")
	}
	ep.AuthStyle = oauth2.AuthStyleInParams
	return ep, nil
}

func (s Settings) secret() (string, error) {
	switch {
	case s.ClientSecret != "" && s.ClientSecretFile != "":
		return "", errors.New("oauth.client_secret_file: give client_secret or client_secret_file, not both")
	case s.ClientSecretFile != "":
		data, err := os.ReadFile(s.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("oauth.client_secret_file: %w", err)
		}
		if secret := strings.TrimSpace(string(data)); secret != "" {
			return secret, nil
		}
		return "", errors.New("oauth.client_secret_file: the file is empty")
	case s.ClientSecret != "":
		return s.ClientSecret, nil
	}
	return "", errors.New("oauth.client_secret: required (or client_secret_file, or a certificate)")
}

func (s Settings) scopes(defaults []string) []string {
	if len(s.Scopes) > 0 {
		return s.Scopes
	}
	return defaults
}

// String shows the settings without the client secret.
func (s Settings) String() string {
	if s.ClientSecret != "" {
		s.ClientSecret = "(redacted)"
	}
	type plain Settings // without this method
	return fmt.Sprintf("%+v", plain(s))
}

// GoString is String, for %#v.
func (s Settings) GoString() string { return s.String() }
