package proxy

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// lineBreaks turns CR and LF into spaces.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// OneLine is s with CR and LF turned into spaces and the ends trimmed, so
// that a configured or upstream text cannot inject a protocol line.
func OneLine(s string) string { return strings.TrimSpace(lineBreaks.Replace(s)) }

// CheckServe is what a line-based front-end's Serve (implicitTLS false) and
// ServeTLS (true) check before accepting: an Authenticator and an upstream
// are set, ServeTLS has a TLS configuration, and Serve can let some client
// log in (TLS offered or cleartext allowed). name is the protocol ("imap").
func CheckServe(name string, auth Authenticator, upstream any, cfg *tls.Config, allowCleartext, implicitTLS bool) error {
	switch {
	case auth == nil:
		return fmt.Errorf("%s: Server.Auth is nil", name)
	case upstream == nil:
		return fmt.Errorf("%s: Server.Upstream is nil", name)
	case implicitTLS && cfg == nil:
		return fmt.Errorf("%s: ServeTLS: TLSConfig is nil", name)
	case !implicitTLS && cfg == nil && !allowCleartext:
		return fmt.Errorf("%s: Serve: TLSConfig is nil and AllowCleartext is false, so no client could log in", name)
	}
	return nil
}
