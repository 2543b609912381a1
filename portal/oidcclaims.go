package portal

import (
	"net/url"
	"strings"

	"github.com/passgate/passgate/store"
)

// oidcIdentity is what a verified ID token says about the user, as the
// configuration reads it.
type oidcIdentity struct {
	user  string // the username claim, normalised
	mfa   bool   // the configured amr/acr requirement is met
	admin *bool  // nil: the provider does not decide who is an admin
}

// oidcRefusal is why a verified ID token does not sign in: msg for the
// user, result for the audit ("" when not audited).
type oidcRefusal struct {
	msg, result string
}

// resultIdPMFAMissing is the audit result of a sign-in whose provider did
// not show the required multi-factor authentication.
const resultIdPMFAMissing = "idp-mfa-missing"

// identity reads the claims of a verified ID token from issuer: the
// username (normalised like every username; with "email", a token that
// says the address is unverified is refused), its domain (AllowedDomains;
// with Google, the hosted domain "hd"), the multi-factor requirement and
// the admin role.
func (c *OIDCConfig) identity(claims map[string]any, issuer string) (oidcIdentity, *oidcRefusal) {
	var id oidcIdentity
	claim := c.UsernameClaim
	if claim == "" {
		claim = "email"
	}
	raw, _ := claims[claim].(string)
	user, err := store.NormalizeUsername(raw)
	if err != nil {
		return id, &oidcRefusal{msg: "The sign-in service did not give your user name (claim \"" + claim + "\"). Ask your administrator."}
	}
	id.user = user
	if claim == "email" && isFalse(claims["email_verified"]) {
		return id, &oidcRefusal{msg: "The sign-in service says your mail address is not verified, so it cannot sign you in here."}
	}
	domain := ""
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		domain = user[i+1:]
	}
	if len(c.AllowedDomains) > 0 && !containsAny(c.AllowedDomains, []string{domain}) {
		if domain == "" {
			return id, &oidcRefusal{msg: "User names without a domain cannot sign in here."}
		}
		return id, &oidcRefusal{msg: "Accounts of " + domain + " cannot sign in here."}
	}
	if isGoogle(issuer) {
		// A personal Google account may carry a work address; only the
		// Workspace's own accounts have its domain in hd.
		hd, _ := claims["hd"].(string)
		hd = strings.ToLower(hd)
		ok := hd != "" && hd == domain
		if len(c.AllowedDomains) > 0 {
			ok = hd != "" && containsAny(c.AllowedDomains, []string{hd})
		}
		if !ok {
			return id, &oidcRefusal{msg: "Only accounts of your organisation's Google Workspace can sign in here."}
		}
	}
	if len(c.RequiredAMR) > 0 || len(c.RequiredACR) > 0 {
		amrOK := len(c.RequiredAMR) == 0 || containsAny(claimStrings(claims["amr"]), c.RequiredAMR)
		acrOK := len(c.RequiredACR) == 0 || containsAny(claimStrings(claims["acr"]), c.RequiredACR)
		if !amrOK || !acrOK {
			return id, &oidcRefusal{result: resultIdPMFAMissing,
				msg: "Your sign-in did not use two-step verification, which this portal requires. " +
					"Sign in again with two-step verification (for example your authenticator app)."}
		}
		id.mfa = true
	}
	if c.AdminClaim != "" {
		admin := containsAny(claimStrings(claims[c.AdminClaim]), []string{c.AdminValue})
		id.admin = &admin
	}
	return id, nil
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// isFalse reports whether a boolean claim is false (some providers send
// "false" as a string).
func isFalse(v any) bool { return v == false || v == "false" }

// isGoogle reports whether issuer is Google's.
func isGoogle(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && strings.EqualFold(u.Hostname(), "accounts.google.com")
}
