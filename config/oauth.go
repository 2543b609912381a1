package config

import (
	"net/url"
	"reflect"
	"strings"

	"github.com/passgate/passgate/proxy/upstream/oauth"
)

// The [oauth] section is oauth.Settings, decoded by its toml tags: where
// the upstream login's OAuth 2.0 access tokens come from (Microsoft 365,
// Google Workspace). Its keys:
//
//	mode                  client_credentials | service_account | delegated
//	provider              microsoft | google (presets), or empty with token_url
//	tenant                Microsoft: the directory (tenant) id or domain
//	client_id             the application (client) id
//	client_secret         or client_secret_file, or PASSGATE_OAUTH_CLIENT_SECRET
//	certificate_file      with key_file: a certificate credential instead of a secret
//	service_account_file  Google: the service account's JSON key
//	scopes                default: the provider's for the mode
//	token_url, auth_url   override the provider's endpoints
//
// An absent or empty section turns OAuth off. The whole section is checked
// at load by oauth.Settings.Check (the one place that knows which mode needs
// which key), which also reads the files it names; relative paths are
// resolved against the configuration file's directory first.

// oauthSecretEnv overrides oauth.client_secret.
const oauthSecretEnv = "PASSGATE_OAUTH_CLIENT_SECRET"

// oauth validates the [oauth] section (after the portal's, whose URL the
// delegated link needs).
func (l *loader) oauth(s *oauth.Settings, p *Portal) {
	if v := l.env(oauthSecretEnv); v != "" && s.Mode != "" {
		s.ClientSecret, s.ClientSecretFile = v, "" // the environment wins, as for every secret
	}
	if reflect.ValueOf(*s).IsZero() {
		return
	}
	if s.Mode == "" {
		l.fail("oauth.mode", nil, "required in [oauth]: client_credentials, service_account or delegated")
		return
	}
	for _, f := range []*string{&s.ClientSecretFile, &s.CertificateFile, &s.KeyFile, &s.ServiceAccountFile} {
		*f = l.path(*f)
	}
	if s.ClientSecretFile != "" && s.ClientSecret == "" {
		// Read here, like every secret file: a regular file of bounded size.
		secret, ok := l.secretFile("oauth.client_secret_file", s.ClientSecretFile)
		if !ok {
			return
		}
		s.ClientSecret, s.ClientSecretFile = secret, ""
	}
	ok := l.endpointURL("oauth.token_url", s.TokenURL)
	ok = l.endpointURL("oauth.auth_url", s.AuthURL) && ok
	ok = l.scopes("oauth.scopes", s.Scopes) && ok
	if s.Mode == oauth.ModeDelegated && (!p.Enabled() || p.URL == "") {
		l.fail("oauth.mode", nil, "delegated needs the portal, where users link their mailboxes: set portal.listen and portal.url")
		ok = false
	}
	if !ok {
		return
	}
	if err := s.Check(); err != nil {
		key, msg, found := strings.Cut(err.Error(), ": ")
		if !found || !strings.HasPrefix(key, "oauth.") || strings.ContainsAny(key, " ") {
			key, msg = "oauth", err.Error()
		}
		l.fail(key, err, "%s", msg)
	}
}

// endpointURL checks an OAuth or OpenID endpoint: empty, or an absolute
// https URL (http only on a loopback host, for tests), without a fragment.
func (l *loader) endpointURL(key, raw string) bool {
	if raw == "" {
		return true
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !printableASCII(raw) || u.Host == "" || u.Fragment != "" || u.User != nil:
		l.fail(key, nil, "%q is not an absolute URL of printable ASCII without a fragment", raw)
	case u.Scheme == "https":
		return true
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return true
	default:
		l.fail(key, nil, "%q: use https (plain http only on localhost, for tests)", raw)
	}
	return false
}

// scopes checks a list of OAuth scopes: each a non-empty token of
// printable ASCII without spaces or quotes (RFC 6749 §3.3).
func (l *loader) scopes(key string, list []string) bool {
	for i, sc := range list {
		if sc == "" || !printableASCII(sc) || strings.ContainsAny(sc, " \"\\") {
			l.fail(key, nil, "entry %d (%q) is not a scope: printable ASCII without spaces, quotes or backslashes", i+1, sc)
			return false
		}
	}
	return true
}

// secretFile reads a secret from path for key: trimmed of surrounding
// white space, not empty. Errors name the path, never the content.
func (l *loader) secretFile(key, path string) (string, bool) {
	b, err := readFile(path, maxSecretFile)
	if err != nil {
		l.fail(key, err, "%v", err)
		return "", false
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		l.fail(key, nil, "%s is empty", path)
		return "", false
	}
	return secret, true
}

// oauthLogins checks that an upstream logging in with OAuth 2.0
// (login = "xoauth2" or "oauthbearer") has the [oauth] section its tokens
// come from.
func (l *loader) oauthLogins(c *Config) {
	for _, u := range []struct {
		prefix string
		up     *Upstream
		on     bool
	}{
		{"imap.upstream", &c.IMAP.Upstream, c.IMAP.Listen != "" || c.IMAP.ListenTLS != ""},
		{"smtp.upstream", &c.SMTP.Upstream, c.SMTP.Enabled()},
	} {
		if u.on && u.up.Login.NeedsTokens() && c.OAuth.Mode == "" {
			l.fail(u.prefix+".login", nil, "%q logs in with OAuth 2.0 access tokens: configure the [oauth] section (mode, provider, client_id ...)", u.up.Login)
		}
	}
}
