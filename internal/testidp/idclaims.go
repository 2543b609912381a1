package testidp

import (
	"maps"

	"github.com/golang-jwt/jwt/v5"
)

// SetIDClaims changes the ID tokens issued to user from now on: each claim
// of claims replaces the IdP's own (iss, aud, exp, nonce, amr, email...)
// or adds one (groups, roles, acr, hd); a nil value removes the claim. A
// nil map restores the defaults. For tests of what a relying party
// accepts: another audience, an expired token, no "mfa" in amr, a group.
func (p *IdP) SetIDClaims(user string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idClaims == nil {
		p.idClaims = map[string]map[string]any{}
	}
	if claims == nil {
		delete(p.idClaims, user)
		return
	}
	p.idClaims[user] = maps.Clone(claims)
}

// idClaimsLocked applies user's SetIDClaims changes to c.
func (p *IdP) idClaimsLocked(user string, c jwt.MapClaims) jwt.MapClaims {
	for k, v := range p.idClaims[user] {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
