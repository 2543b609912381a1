package config

import (
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string in the file
// ("30s", "35m", "1h30m"). A bare number is rejected: it has no unit.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(s)
	if err != nil {
		if s != "" && strings.TrimLeft(s, "+-0123456789.") == "" {
			return fmt.Errorf("%q has no unit: write e.g. \"%ss\" or \"%sm\"", s, s, s)
		}
		return fmt.Errorf("%q is not a duration such as \"30s\" or \"35m\"", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// TLSMode is how passgate secures its connection to an upstream.
type TLSMode string

// TLS modes.
const (
	TLSNone     TLSMode = "none"     // plain TCP
	TLSStartTLS TLSMode = "starttls" // plain TCP, then STARTTLS (RFC 3501 §6.2.1)
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (RFC 8314 §3.3)
)

var tlsModes = []string{string(TLSNone), string(TLSStartTLS), string(TLSImplicit)}

// UnmarshalText accepts none, starttls or tls.
func (m *TLSMode) UnmarshalText(text []byte) error {
	v, err := oneOf(string(text), tlsModes)
	*m = TLSMode(v)
	return err
}

// LoginMode is how passgate logs in to an upstream on behalf of a user.
type LoginMode string

// Login modes; see Upstream.Login.
const (
	LoginMaster      LoginMode = "master"
	LoginLoginMaster LoginMode = "login-master"
	LoginPassthrough LoginMode = "passthrough"
	// LoginXCLIENT is SMTP only: Postfix XCLIENT LOGIN= from a trusted proxy.
	LoginXCLIENT LoginMode = "xclient"
)

var loginModes = []string{string(LoginMaster), string(LoginLoginMaster), string(LoginPassthrough), string(LoginXCLIENT)}

// UnmarshalText accepts master, login-master, passthrough or xclient.
func (m *LoginMode) UnmarshalText(text []byte) error {
	v, err := oneOf(string(text), loginModes)
	*m = LoginMode(v)
	return err
}

// NeedsMaster reports whether the mode logs in with the master user.
func (m LoginMode) NeedsMaster() bool { return m == LoginMaster || m == LoginLoginMaster }

// oneOf returns s if it is one of allowed, otherwise an error listing them.
func oneOf(s string, allowed []string) (string, error) {
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}
