package oauthsasl

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Failure is the error a server reports in its challenge when it refuses a
// token: a JSON object (RFC 7628 §3.2.2; Google's XOAUTH2 document shows
// the same fields, with HTTP status numbers as the status).
type Failure struct {
	Status  string `json:"status"`  // "401", "invalid_token", "insufficient_scope" ...
	Schemes string `json:"schemes"` // e.g. "bearer"
	Scope   string `json:"scope"`   // the scope the server wants
	// OpenIDConfiguration is the discovery document the server points at
	// (RFC 7628 §3.2.2 "openid-configuration").
	OpenIDConfiguration string `json:"openid-configuration"`
	// Malformed is set when the challenge was not such a JSON object.
	Malformed bool `json:"-"`
}

// maxField bounds what a Failure keeps of each field the server sent, so
// that a hostile server cannot fill logs through it.
const maxField = 200

// ParseFailure reads an error challenge (already base64-decoded). It never
// fails: a challenge that is not a JSON object gives a Failure with
// Malformed set, which Classify treats as Unavailable.
func ParseFailure(challenge []byte) *Failure {
	var f Failure
	if err := json.Unmarshal(challenge, &f); err != nil {
		return &Failure{Malformed: true}
	}
	for _, s := range []*string{&f.Status, &f.Schemes, &f.Scope, &f.OpenIDConfiguration} {
		*s = printable(*s)
	}
	return &f
}

// printable keeps the first maxField printable characters of s.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) <= maxField {
		return s
	}
	n := maxField
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (f *Failure) String() string {
	if f.Malformed {
		return "malformed error challenge"
	}
	s := "status " + strconv.Quote(f.Status)
	if f.Scope != "" {
		s += ", scope " + strconv.Quote(f.Scope)
	}
	return s
}

// Verdict is what the upstream login should do after a refusal.
type Verdict int

const (
	// Unavailable: the server failed for another reason (its own trouble,
	// an unknown status, a malformed challenge): answer the client
	// NO [UNAVAILABLE] / 454 4.7.0.
	Unavailable Verdict = iota
	// Retry: the token is expired or invalid: invalidate it, fetch a new
	// one and log in once more (once: a second refusal is final).
	Retry
	// Refused: the token is valid but lacks a permission or consent (the
	// application was not granted the mailbox, or the scope is wrong): no
	// new token will help; answer NO [AUTHORIZATIONFAILED] / 535 with
	// Explain's text so that an admin can act.
	Refused
)

func (v Verdict) String() string {
	switch v {
	case Retry:
		return "retry"
	case Refused:
		return "refused"
	}
	return "unavailable"
}

// Classify says what a refusal with Failure f means. Statuses are HTTP
// numbers (Google, Dovecot's XOAUTH2) or RFC 6750 §3.1 error codes
// (OAUTHBEARER).
func Classify(f *Failure) Verdict {
	if f == nil || f.Malformed {
		return Unavailable
	}
	switch strings.ToLower(strings.TrimSpace(f.Status)) {
	case "401", "invalid_token":
		return Retry
	case "400", "403", "invalid_request", "invalid_scope", "insufficient_scope":
		return Refused
	}
	return Unavailable
}

// Explain returns the text, for an admin, of a Refused failure.
func Explain(f *Failure) string {
	return "the mail server accepted the token but refused access (" + f.String() + "): " +
		"grant the application access to this mailbox and give admin consent " +
		"(Microsoft 365: IMAP.AccessAsApp / SMTP.SendAsApp, and the service principal granted the mailbox in Exchange Online; " +
		"Google Workspace: domain-wide delegation of https://mail.google.com/)"
}
