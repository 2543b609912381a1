package config

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PortalOIDC is [portal.oidc]: sign-in to the portal with the
// organisation's OpenID Connect provider (Microsoft Entra ID, Google,
// any other). The portal's redirect URI is the origin of portal.url
// followed by /signin/oidc/callback; register it at the provider. An
// absent section, or one without issuer, turns it off.
type PortalOIDC struct {
	// Issuer is the provider's issuer URL, where its discovery document
	// is (issuer + /.well-known/openid-configuration). Microsoft:
	// https://login.microsoftonline.com/<tenant id>/v2.0 (the tenant's
	// id, not its domain: the ID tokens name the id). Google:
	// https://accounts.google.com. https only (http on localhost).
	Issuer string `toml:"issuer"`
	// ClientID is the portal's client (application) id at the provider.
	// Required.
	ClientID string `toml:"client_id"`
	// ClientSecret authenticates the portal to the provider. After Parse
	// it holds the effective secret: PASSGATE_PORTAL_OIDC_CLIENT_SECRET,
	// else this key, else ClientSecretFile. Required. Never printed.
	ClientSecret string `toml:"client_secret"`
	// ClientSecretFile is a file holding the secret (surrounding white
	// space trimmed). Mutually exclusive with ClientSecret.
	ClientSecretFile string `toml:"client_secret_file"`
	// Scopes are requested at sign-in. Default ["openid", "email",
	// "profile"]; must contain "openid".
	Scopes []string `toml:"scopes"`
	// UsernameClaim is the ID token claim that holds the passgate
	// username (the mail address), normalised like every username.
	// Default "email"; Microsoft: "preferred_username" (the UPN) or
	// "upn". With "email", a token whose email_verified is false is
	// refused.
	UsernameClaim string `toml:"username_claim"`
	// AllowedDomains, if set, are the only domains (after the "@") a
	// username may have; others are refused. Default: any domain the
	// provider vouches for. With Google's issuer the token's "hd" (the
	// Workspace domain) must also be the username's domain.
	AllowedDomains []string `toml:"allowed_domains"`
	// RequiredAMR, if set, makes a sign-in count only when the token's
	// "amr" holds one of these values (e.g. ["mfa"]): the provider did
	// multi-factor authentication, so the portal asks no TOTP code.
	// Unset: the user's own two-step verification applies after the
	// provider's sign-in.
	RequiredAMR []string `toml:"required_amr"`
	// RequiredACR, if set, makes a sign-in count only when the token's
	// "acr" is one of these values (e.g. a provider's MFA level). Like
	// RequiredAMR it replaces the TOTP step; with both, both must hold.
	RequiredACR []string `toml:"required_acr"`
	// AdminClaim and AdminValue, if set (both or neither), make the
	// provider decide who is an administrator: a user whose token's
	// AdminClaim (a string or a list, e.g. "roles" or "groups") holds
	// AdminValue gets the admin role at sign-in, and one whose token does
	// not loses it.
	AdminClaim string `toml:"admin_claim"`
	AdminValue string `toml:"admin_value"`
	// ButtonLabel is the sign-in button's text. Default "Sign in with
	// Microsoft" or "Sign in with Google" for their issuers, else "Sign in
	// with your organisation".
	ButtonLabel string `toml:"button_label"`

	// ClientSecretFrom says where ClientSecret came from, for humans.
	ClientSecretFrom string `toml:"-"`
}

// Enabled reports whether the portal offers the sign-in.
func (o *PortalOIDC) Enabled() bool { return o.Issuer != "" }

const (
	oidcSecretEnv        = "PASSGATE_PORTAL_OIDC_CLIENT_SECRET"
	defaultUsernameClaim = "email"
	maxButtonLabel       = 60
)

var defaultOIDCScopes = []string{"openid", "email", "profile"}

// portalOIDC validates [portal.oidc] (after portal, whose URL it needs).
func (l *loader) portalOIDC(p *Portal) {
	o := &p.OIDC
	if reflect.ValueOf(*o).IsZero() {
		return
	}
	if o.Issuer == "" {
		l.fail("portal.oidc.issuer", nil, "required in [portal.oidc]: the provider's issuer URL")
		return
	}
	if l.endpointURL("portal.oidc.issuer", o.Issuer) {
		if u, _ := url.Parse(o.Issuer); u.RawQuery != "" {
			l.fail("portal.oidc.issuer", nil, "%q has a query; an issuer has none", o.Issuer)
		}
	}
	if p.URL == "" {
		l.fail("portal.oidc.issuer", nil, "needs portal.url: the provider sends users back to it")
	}
	if o.ClientID == "" {
		l.fail("portal.oidc.client_id", nil, "required: the portal's client (application) id at the provider")
	}
	l.oidcSecret(o)
	if len(o.Scopes) == 0 {
		o.Scopes = slices.Clone(defaultOIDCScopes)
	}
	if l.scopes("portal.oidc.scopes", o.Scopes) && !slices.Contains(o.Scopes, "openid") {
		l.fail("portal.oidc.scopes", nil, "must contain \"openid\"")
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = defaultUsernameClaim
	}
	l.claimName("portal.oidc.username_claim", o.UsernameClaim)
	for i, d := range o.AllowedDomains {
		o.AllowedDomains[i] = strings.ToLower(strings.TrimSpace(d))
		if d = o.AllowedDomains[i]; d == "" || !printableASCII(d) || strings.ContainsAny(d, "@ /") {
			l.fail("portal.oidc.allowed_domains", nil, "entry %d (%q) is not a domain", i+1, d)
		}
	}
	l.claimValues("portal.oidc.required_amr", o.RequiredAMR)
	l.claimValues("portal.oidc.required_acr", o.RequiredACR)
	switch {
	case o.AdminClaim != "" && o.AdminValue == "":
		l.fail("portal.oidc.admin_value", nil, "required with portal.oidc.admin_claim")
	case o.AdminClaim == "" && o.AdminValue != "":
		l.fail("portal.oidc.admin_claim", nil, "required with portal.oidc.admin_value")
	case o.AdminClaim != "":
		l.claimName("portal.oidc.admin_claim", o.AdminClaim)
	}
	if o.ButtonLabel == "" {
		o.ButtonLabel = defaultButtonLabel(o.Issuer)
	}
	if !printableUTF8(o.ButtonLabel) || len([]rune(o.ButtonLabel)) > maxButtonLabel {
		l.fail("portal.oidc.button_label", nil, "must be at most %d printable characters", maxButtonLabel)
	}
}

// oidcSecret finds the client secret: the environment, the key, the file.
func (l *loader) oidcSecret(o *PortalOIDC) {
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		l.fail("portal.oidc.client_secret_file", nil, "set only one of client_secret and client_secret_file")
		return
	}
	switch {
	case l.env(oidcSecretEnv) != "":
		o.ClientSecret, o.ClientSecretFrom = l.env(oidcSecretEnv), "env "+oidcSecretEnv
	case o.ClientSecret != "":
		o.ClientSecretFrom = "portal.oidc.client_secret"
	case o.ClientSecretFile != "":
		o.ClientSecretFile = l.path(o.ClientSecretFile)
		if secret, ok := l.secretFile("portal.oidc.client_secret_file", o.ClientSecretFile); ok {
			o.ClientSecret, o.ClientSecretFrom = secret, "file "+o.ClientSecretFile
		}
	default:
		l.fail("portal.oidc.client_secret", nil, "required: set client_secret, client_secret_file or %s", oidcSecretEnv)
	}
}

// claimName checks the name of a JWT claim.
func (l *loader) claimName(key, name string) {
	if name == "" || !printableASCII(name) || strings.ContainsAny(name, " \"\\") {
		l.fail(key, nil, "%q is not a claim name", name)
	}
}

// claimValues checks a list of values a claim must hold one of.
func (l *loader) claimValues(key string, values []string) {
	for i, v := range values {
		if v == "" || !printableASCII(v) {
			l.fail(key, nil, "entry %d (%q) must be non-empty printable ASCII", i+1, v)
		}
	}
}

// defaultButtonLabel names the provider of well-known issuers.
func defaultButtonLabel(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return "Sign in with your organisation"
	}
	switch host := strings.ToLower(u.Hostname()); {
	case host == "login.microsoftonline.com" || strings.HasSuffix(host, ".microsoftonline.com"):
		return "Sign in with Microsoft"
	case host == "accounts.google.com":
		return "Sign in with Google"
	}
	return "Sign in with your organisation"
}

// printableUTF8 reports whether s is valid UTF-8 of printable characters.
func printableUTF8(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// String shows the section without the client secret.
func (o PortalOIDC) String() string {
	if o.ClientSecret != "" {
		o.ClientSecret = "(redacted)"
	}
	type plain PortalOIDC // without this method
	return fmt.Sprintf("%+v", plain(o))
}

// GoString is String, for %#v.
func (o PortalOIDC) GoString() string { return o.String() }
